"""xDLMS and ACSE APDUs: the corpus's APDUs decode and build back byte for byte, built APDUs
parse back equal, refusals decode to clear ServiceErrors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.dlms.acse import (
    CONTEXTS,
    Aare,
    Aarq,
    InitiateRequest,
    InitiateResponse,
    Release,
    conformance_block,
    conformance_names,
)
from drivers.dlms.apdu import (
    NEXT,
    WITH_LIST,
    Access,
    ActionRequest,
    ActionResponse,
    Descriptor,
    GetRequest,
    GetResponse,
    Service,
    SetRequest,
    SetResponse,
    parse_service,
    raise_for_result,
)
from drivers.dlms.axdr import Data, Tag
from drivers.dlms.errors import ServiceError
from drivers.dlms.notification import ConfirmedServiceError, DataNotification, ExceptionResponse
from drivers.dlms.timefields import decode_date_time
from drivers.errors import FrameError

CLOCK = Descriptor(8, bytes.fromhex("0000010000FF"), 2)
ENERGY = Descriptor(3, bytes.fromhex("0100010800FF"), 2)
DISCONNECT = Descriptor(70, bytes.fromhex("0000600300FF"), 1)

# pwitab/dlms-cosem tests (test_xdlms/*, test_dlms_connection.py): plain service APDUs
SERVICES = [
    "C401C1000600001391",  # get-response normal, double-long-unsigned 5009
    "C402C101000000130101",  # get-response with data block, last, result hardware-fault
    "C001C100070100630100FF0201010204020412000809060000010000FF0F02120000090C07E10A010700"
    "000000FFC480090C07E10A010701000000FFC4800100",  # get-request with range descriptor
    "C101C100080000010000FF0200090C07E50118FF0E303950FFC400",  # set-request normal
    "C701C000010009111000001AFDE8857B728A3499106AA665D1",  # action-response with data
]
ACSE = [
    "6129A109060760857405080101A203020101A305A103020102BE10040E0800065F1F040000501F01F40007",
    "611FA109060760857405080101A203020101A305A103020101BE0604040E010601",
    "6036A1090607608574050801018A0207808B0760857405080202AC0A80083132333435363738BE10040E0100"
    "0000065F1F0400007E1FFFFF",
    "601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF",
]


@pytest.mark.parametrize("hex_apdu", SERVICES)
def test_corpus_services_build_back(hex_apdu: str) -> None:
    raw = bytes.fromhex(hex_apdu)
    assert parse_service(raw).build() == raw


@pytest.mark.parametrize("hex_apdu", ACSE)
def test_corpus_associations_build_back(hex_apdu: str) -> None:
    raw = bytes.fromhex(hex_apdu)
    parsed = Aarq.parse(raw) if raw[0] == 0x60 else Aare.parse(raw)
    assert parsed.build() == raw


def test_aare_rejection_reads_clearly() -> None:
    aare = Aare.parse(bytes.fromhex(ACSE[0]))
    assert not aare.accepted
    assert aare.reason() == "rejected_permanent: application_context_name_not_supported"
    assert aare.user_information is not None
    response = InitiateResponse.parse(aare.user_information)
    assert response.max_receive_pdu == 500 and "get" in conformance_names(response.conformance)
    refused = Aare.parse(bytes.fromhex(ACSE[1]))
    assert refused.user_information is not None
    error = parse_service(refused.user_information)
    assert isinstance(error, ConfirmedServiceError)
    assert error.reason() == "initiate: initiate dlms_version_too_low"


def test_hls_aarq_fields() -> None:
    aarq = Aarq.parse(bytes.fromhex(ACSE[2]))
    assert aarq.mechanism == 2 and aarq.authentication_value == b"12345678"
    assert "12345678" not in repr(aarq)  # a password never reaches a log line


def test_hls_gmac_association_round_trip() -> None:
    request = InitiateRequest(conformance_block(["get", "set", "action",
                                                 "block_transfer_with_get_or_read"]), 1200)
    aarq = Aarq(1, b"GWY\x00\x00\x00\x00\x01", 5, b"K56iVagY", request.build())
    assert Aarq.parse(aarq.build()) == aarq
    aare = Aare(0, 14, 1, 1, b"MMM\x00\x00\xbcaN", 5, b"P6wRJ21F",
                InitiateResponse(0x001E1D, 1024).build())
    assert Aare.parse(aare.build()) == aare
    release = Release(0x63, 0, None)
    assert Release.parse(release.build()) == release


def test_block_transfer_round_trip() -> None:
    first = GetResponse(NEXT, 0xC1, (), False, 1, b"\x01\x02" + b"\x00" * 200)
    assert parse_service(first.build()) == first
    nxt = GetRequest(NEXT, 0xC1, (), 1)
    assert parse_service(nxt.build()) == nxt
    refused = parse_service(GetResponse(NEXT, 0xC1, (), True, 2, 14).build())
    assert isinstance(refused, GetResponse) and refused.raw_data == 14


def test_with_list_round_trips() -> None:
    request = GetRequest(WITH_LIST, 0xC2, ((CLOCK, None), (ENERGY, Access(
        2, Data(Tag.STRUCTURE, (Data(Tag.DOUBLE_LONG_UNSIGNED, 1),))))))
    assert parse_service(request.build()) == request
    response = GetResponse(WITH_LIST, 0xC2, (Data(Tag.LONG_UNSIGNED, 7), 4))
    assert parse_service(response.build()) == response
    set_list = SetRequest(4, 0xC1, ((CLOCK, None), (ENERGY, None)),
                          (Data(Tag.NULL), Data(Tag.UNSIGNED, 3)))
    assert parse_service(set_list.build()) == set_list
    assert parse_service(SetResponse(5, 0xC1, (0, 3)).build()) == SetResponse(5, 0xC1, (0, 3))


def test_action_round_trip() -> None:
    action = ActionRequest(DISCONNECT, Data(Tag.INTEGER, 0))
    assert parse_service(action.build()) == action
    assert parse_service(ActionResponse(0, None).build()) == ActionResponse(0, None)


def test_data_notification_forms() -> None:
    stamp = decode_date_time(bytes.fromhex("07E1090C0217122AFF800000"))
    push = DataNotification(0x40000000, stamp, Data(Tag.STRUCTURE, (Data(Tag.UNSIGNED, 1),)))
    assert parse_service(push.build()) == push
    bare = bytes.fromhex("0F00000001") + b"\x0c" + stamp.encode() + b"\x11\x05"
    parsed = parse_service(bare)
    assert isinstance(parsed, DataNotification) and parsed.date_time == stamp
    with pytest.raises(FrameError, match="0 or 12"):
        parse_service(bytes.fromhex("0F0000000105") + b"\x00" * 6)


@pytest.mark.parametrize(("apdu", "reason"), [
    (ExceptionResponse(1, 6, 0x1234), "service_not_allowed/invocation_counter_error 4660"),
    (ExceptionResponse(2, 2), "service_unknown/service_not_supported"),
    (GetResponse(results=(3,)), "read_write_denied"),
    (SetResponse(results=(4,)), "object_undefined"),
    (ActionResponse(250), "other_reason"),
    (GetResponse(NEXT, 0xC1, (), True, 2, 19), "data_block_number_invalid"),
])
def test_refusals_raise_service_errors(apdu: Service, reason: str) -> None:
    assert parse_service(apdu.build()) == apdu
    with pytest.raises(ServiceError) as caught:
        raise_for_result(apdu)
    assert caught.value.reason == reason


def test_success_raises_nothing() -> None:
    raise_for_result(GetResponse(results=(Data(Tag.LONG, 5),)))
    raise_for_result(SetResponse())


@pytest.mark.parametrize("raw", ["", "C4", "C409C1", "C401", "C401C102", "C1FFC1", "D8",
                                 "C301C1000F", "0F00", "C401C1000600001391FF", "99"])
def test_malformed_services_are_frame_errors(raw: str) -> None:
    with pytest.raises(FrameError):
        parse_service(bytes.fromhex(raw))


@given(st.integers(0, 0xFFFFFF))
def test_conformance_names_round_trip(block: int) -> None:
    assert conformance_block(conformance_names(block)) == block


@given(st.binary(min_size=9, max_size=9), st.integers(0, 255),
       st.one_of(st.none(), st.binary(max_size=40)))
def test_get_and_set_round_trip(name: bytes, invoke: int, octets: bytes | None) -> None:
    descriptor = Descriptor(int.from_bytes(name[:2], "big"), name[2:8],
                            int.from_bytes(name[8:], "big", signed=True))
    get = GetRequest(1, invoke, ((descriptor, None),))
    assert parse_service(get.build()) == get
    value = Data(Tag.NULL) if octets is None else Data(Tag.OCTET_STRING, octets)
    assert parse_service(SetRequest(1, invoke, ((descriptor, None),), (value,)).build()) == (
        SetRequest(1, invoke, ((descriptor, None),), (value,)))


_OCTETS = st.one_of(st.none(), st.binary(max_size=40))


@given(st.sampled_from(sorted(CONTEXTS)), _OCTETS, st.one_of(st.none(), st.integers(0, 7)),
       _OCTETS, _OCTETS)
def test_aarq_round_trips(context: int, title: bytes | None, mechanism: int | None,
                          value: bytes | None, info: bytes | None) -> None:
    aarq = Aarq(context, title, mechanism, value if mechanism is not None else None, info)
    assert Aarq.parse(aarq.build()) == aarq


@given(st.integers(0, 2), st.integers(0, 14), st.sampled_from([1, 2]),
       st.sampled_from(sorted(CONTEXTS)), _OCTETS, st.one_of(st.none(), st.integers(0, 7)),
       _OCTETS, _OCTETS)
def test_aare_round_trips(result: int, diagnostic: int, source: int, context: int,
                          title: bytes | None, mechanism: int | None, value: bytes | None,
                          info: bytes | None) -> None:
    aare = Aare(result, diagnostic, source, context, title, mechanism,
                value if mechanism is not None else None, info)
    assert Aare.parse(aare.build()) == aare


@given(st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFF), _OCTETS, st.booleans(),
       st.one_of(st.none(), st.integers(0, 255)))
def test_initiate_request_round_trips(block: int, size: int, key: bytes | None, allowed: bool,
                                      qos: int | None) -> None:
    request = InitiateRequest(block, size, key, allowed, qos)
    assert InitiateRequest.parse(request.build()) == request
