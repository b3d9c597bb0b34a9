"""A DLMS/COSEM client association over a link (HDLC or wrapper): AARQ/AARE with
authentication none, LLS (password) or HLS-GMAC (mechanism 5), optionally every APDU under
security suite 0 (service-specific glo- ciphering, authenticated and encrypted); GET normal,
with-list and block transfer, SET, ACTION, release.

The client's own invocation counter comes from `own_counter()` (drivers/dlms/counters.py
reserves it on disk before it is used); the server's is checked by an
`InvocationCounterGuard` (a replayed or old counter is refused). Keys never leave this module
in a message.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from drivers.dlms import acse
from drivers.dlms.apdu import (
    NEXT,
    NORMAL,
    SET_WITH_LIST,
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
from drivers.dlms.axdr import Data, Tag, decode_data
from drivers.dlms.errors import CipherError
from drivers.dlms.links import Link
from drivers.dlms.security import (
    SC_AUTHENTICATED,
    SC_ENCRYPTED,
    SERVICE_CIPHERED,
    InvocationCounterGuard,
    Keys,
    hls_gmac_response,
    hls_gmac_verify,
    is_ciphered,
    open_protected,
    parse_protected,
    seal,
)
from drivers.errors import DeviceRejected, FrameError

ASSOCIATION_LN: Final = bytes([0, 0, 40, 0, 0, 255])
ASSOCIATION_LN_CLASS: Final = 15
REPLY_TO_HLS_METHOD: Final = 1
CHALLENGE_BYTES: Final = 16  # HLS challenges are 8..64 bytes
MAX_BLOCKS: Final = 4096  # a block transfer longer than this is a runaway
CLIENT_PDU_SIZE: Final = 0xFFFF
CONFORMANCE: Final = acse.conformance_block(
    ["block_transfer_with_get_or_read", "multiple_references", "get", "set",
     "selective_access", "action"])
PROTECTION: Final = SC_AUTHENTICATED | SC_ENCRYPTED
_GLO_TAG_OF: Final = {plain: tag for tag, (name, plain) in SERVICE_CIPHERED.items()
                      if name.startswith("glo-")}
DEFAULT_SYSTEM_TITLE: Final = bytes.fromhex("4D4757" "0000000001")  # "MGW" + serial


class Authentication(enum.Enum):
    NONE = "none"
    LLS = "lls"
    HLS_GMAC = "hls_gmac"


class AssociationState(enum.Enum):
    IDLE = "idle"
    AUTHENTICATING = "authenticating"  # AARE accepted, HLS pass 3/4 pending
    ASSOCIATED = "associated"
    RELEASED = "released"


@dataclass(frozen=True)
class Credentials:
    """How the client associates: the mechanism, the secret it needs, and whether every APDU
    goes ciphered (suite 0, authenticated and encrypted)."""

    authentication: Authentication = Authentication.NONE
    password: bytes | None = field(default=None, repr=False)
    keys: Keys | None = None
    ciphered: bool = False
    system_title: bytes = DEFAULT_SYSTEM_TITLE

    def __post_init__(self) -> None:
        if self.authentication is Authentication.LLS and not self.password:
            raise ValueError("LLS needs a password")
        if (self.authentication is Authentication.HLS_GMAC or self.ciphered) and not (
                self.keys and self.keys.authentication):
            raise ValueError("HLS-GMAC and ciphering need the encryption and authentication keys")
        if len(self.system_title) != 8:
            raise ValueError("a system title is 8 bytes")


def attribute(class_id: int, obis: bytes, index: int) -> Descriptor:
    return Descriptor(class_id, obis, index)


class Association:
    """One application association with one logical device."""

    def __init__(self, link: Link, credentials: Credentials, *,
                 own_counter: Callable[[], int] | None = None,
                 server_guard: InvocationCounterGuard | None = None,
                 challenge: Callable[[int], bytes] = os.urandom) -> None:
        if (credentials.ciphered or credentials.authentication is Authentication.HLS_GMAC) and (
                own_counter is None or server_guard is None):
            raise ValueError("a ciphered association needs its invocation counters")
        self.link = link
        self.credentials = credentials
        self._own_counter = own_counter or (lambda: 0)
        self._guard = server_guard
        self._challenge = challenge
        self.state = AssociationState.IDLE
        self.server_title: bytes | None = None
        self.max_pdu = CLIENT_PDU_SIZE
        self._invoke = 0

    # ---- association -------------------------------------------------------------------
    async def associate(self) -> None:
        creds = self.credentials
        ctos = self._challenge(CHALLENGE_BYTES)
        mechanism, value = {Authentication.NONE: (None, None),
                            Authentication.LLS: (1, creds.password),
                            Authentication.HLS_GMAC: (5, ctos)}[creds.authentication]
        initiate = acse.InitiateRequest(CONFORMANCE, CLIENT_PDU_SIZE).build()
        if creds.ciphered:
            initiate = self._seal(initiate, tag=0x21)
        aarq = acse.Aarq(3 if creds.ciphered else 1,
                         creds.system_title if creds.ciphered or mechanism == 5 else None,
                         mechanism, value, initiate)
        aare = self._parse_aare(await self.link.request(aarq.build()))
        self._initiated(aare)
        if creds.authentication is Authentication.HLS_GMAC:
            self.state = AssociationState.AUTHENTICATING
            await self._hls_pass_3(aare, ctos)
        self.state = AssociationState.ASSOCIATED

    def _parse_aare(self, raw: bytes) -> acse.Aare:
        if raw[:1] != bytes([acse.AARE]):
            service = parse_service(raw)  # an exception-response instead of an AARE
            raise_for_result(service)
            raise FrameError(f"AARQ answered with {type(service).__name__}", 0)
        aare = acse.Aare.parse(raw)
        if not aare.accepted:
            raise DeviceRejected(f"association refused: {aare.reason()}")
        return aare

    def _initiated(self, aare: acse.Aare) -> None:
        self.server_title = aare.responding_ap_title
        info = aare.user_information
        if info is None:
            raise FrameError("AARE without an InitiateResponse", 0)
        if is_ciphered(info):
            info = self._open(info)
        if info[:1] != bytes([acse.INITIATE_RESPONSE]):
            raise_for_result(parse_service(info))
            raise FrameError("AARE user information is not an InitiateResponse", 0)
        response = acse.InitiateResponse.parse(info)
        self.max_pdu = min(CLIENT_PDU_SIZE, response.max_receive_pdu or CLIENT_PDU_SIZE)

    async def _hls_pass_3(self, aare: acse.Aare, ctos: bytes) -> None:
        keys, stoc = self.credentials.keys, aare.authentication_value
        if keys is None or not stoc or self.server_title is None:
            raise FrameError("HLS-GMAC AARE without a challenge or system title", 0)
        answer = hls_gmac_response(keys, self.credentials.system_title, self._own_counter(),
                                   stoc)
        returned = await self.action(ASSOCIATION_LN_CLASS, ASSOCIATION_LN, REPLY_TO_HLS_METHOD,
                                     Data(Tag.OCTET_STRING, answer))
        if returned is None or not isinstance(returned.value, bytes):
            raise CipherError("HLS-GMAC: the meter gave no f(CtoS)")
        hls_gmac_verify(keys, self.server_title, ctos, returned.value)

    async def release(self) -> None:
        """RLRQ; a meter that does not answer is released anyway (the link closes next)."""
        if self.state is AssociationState.ASSOCIATED:
            self.state = AssociationState.RELEASED
            raw = await self.link.request(acse.Release(acse.RLRQ, 0).build())
            if raw[:1] != bytes([acse.RLRE]):
                raise FrameError("RLRQ not answered with RLRE", 0)

    # ---- services ----------------------------------------------------------------------
    async def get(self, class_id: int, obis: bytes, index: int,
                  access: Access | None = None) -> Data:
        """One attribute's value (block transfer followed); ServiceError when refused."""
        request = GetRequest(NORMAL, self._next_invoke(),
                             ((attribute(class_id, obis, index), access),))
        response = await self._get_exchange(request)
        if response.kind == NEXT:
            return decode_data(await self._rest_of_blocks(response))
        raise_for_result(response)
        value = response.results[0]
        assert not isinstance(value, int)
        return value

    async def get_many(self, items: Sequence[tuple[int, bytes, int]]) -> list[Data | int]:
        """GET with-list: each value or its data-access-result (an int) in order."""
        request = GetRequest(WITH_LIST, self._next_invoke(),
                             tuple((attribute(c, o, i), None) for c, o, i in items))
        response = await self._get_exchange(request)
        if response.kind == NEXT:
            whole = await self._rest_of_blocks(response)
            joined = parse_service(bytes([0xC4, WITH_LIST, request.invoke]) + whole)
            assert isinstance(joined, GetResponse)
            response = joined
        if response.kind != WITH_LIST or len(response.results) != len(items):
            raise FrameError(f"{len(items)} attributes asked, {len(response.results)} answered",
                             0)
        return list(response.results)

    async def set(self, class_id: int, obis: bytes, index: int, value: Data) -> None:
        request = SetRequest(NORMAL, self._next_invoke(),
                             ((attribute(class_id, obis, index), None),), (value,))
        response = await self._exchange(request.build(), request.invoke)
        if not isinstance(response, SetResponse):
            raise_for_result(response)
            raise FrameError(f"SET answered with {type(response).__name__}", 0)
        raise_for_result(response)

    async def set_many(self, items: Sequence[tuple[int, bytes, int, Data]]) -> list[int]:
        request = SetRequest(SET_WITH_LIST, self._next_invoke(),
                             tuple((attribute(c, o, i), None) for c, o, i, _ in items),
                             tuple(v for *_, v in items))
        response = await self._exchange(request.build(), request.invoke)
        if not isinstance(response, SetResponse):
            raise_for_result(response)
            raise FrameError(f"SET answered with {type(response).__name__}", 0)
        return list(response.results)

    async def action(self, class_id: int, obis: bytes, method: int,
                     parameters: Data | None = None) -> Data | None:
        request = ActionRequest(attribute(class_id, obis, method), parameters,
                                self._next_invoke())
        response = await self._exchange(request.build(), request.invoke)
        if not isinstance(response, ActionResponse):
            raise_for_result(response)
            raise FrameError(f"ACTION answered with {type(response).__name__}", 0)
        raise_for_result(response)
        return response.returned if isinstance(response.returned, Data) else None

    async def _get_exchange(self, request: GetRequest) -> GetResponse:
        response = await self._exchange(request.build(), request.invoke)
        if not isinstance(response, GetResponse):
            raise_for_result(response)
            raise FrameError(f"GET answered with {type(response).__name__}", 0)
        return response

    async def _rest_of_blocks(self, first: GetResponse) -> bytes:
        """Ask for block n+1 until the last: the raw data of every block joined."""
        parts, response = [], first
        for expected in range(1, MAX_BLOCKS + 1):
            if response.kind != NEXT or response.block_number != expected:
                raise FrameError(f"block {response.block_number} where {expected} was due", 0)
            if isinstance(response.raw_data, int):
                raise_for_result(response)
            assert isinstance(response.raw_data, bytes)
            parts.append(response.raw_data)
            if response.last_block:
                return b"".join(parts)
            request = GetRequest(NEXT, self._next_invoke(), (), expected)
            response = await self._get_exchange(request)
        raise FrameError(f"block transfer beyond {MAX_BLOCKS} blocks", 0)

    async def _exchange(self, plain: bytes, invoke: int) -> Service:
        if self.state not in (AssociationState.ASSOCIATED, AssociationState.AUTHENTICATING):
            raise FrameError(f"no association ({self.state.value})", 0)
        if len(plain) > self.max_pdu:
            raise FrameError(f"request of {len(plain)} bytes above the meter's PDU size "
                             f"{self.max_pdu}", 0)
        apdu = self._seal(plain) if self.credentials.ciphered else plain
        raw = await self.link.request(apdu)
        if self.credentials.ciphered and not is_ciphered(raw) and raw[:1] not in (b"\xd8",
                                                                                  b"\x0e"):
            raise CipherError("the meter answered a ciphered request in plain")
        service = parse_service(self._open(raw) if is_ciphered(raw) else raw)
        answered = getattr(service, "invoke", invoke)
        if answered & 0x0F != invoke & 0x0F:
            raise FrameError(f"answer for invoke id {answered & 0x0F}, asked {invoke & 0x0F}", 0)
        return service

    def _next_invoke(self) -> int:
        self._invoke = (self._invoke + 1) % 16
        return 0xC0 | self._invoke

    # ---- protection --------------------------------------------------------------------
    def _seal(self, plain: bytes, tag: int | None = None) -> bytes:
        keys = self.credentials.keys
        assert keys is not None
        glo = tag if tag is not None else _GLO_TAG_OF.get(plain[0])
        if glo is None:
            raise FrameError(f"APDU 0x{plain[0]:02X} has no glo- ciphered form", 0)
        return seal(plain, keys, self.credentials.system_title, self._own_counter(), PROTECTION,
                    glo)

    def _open(self, raw: bytes) -> bytes:
        keys = self.credentials.keys
        if keys is None or self._guard is None:
            raise CipherError("a ciphered answer, and no keys for this meter")
        protected = parse_protected(raw)
        self._guard.check(protected.invocation_counter)
        plain = open_protected(protected, keys, self.server_title)
        self._guard.accept(protected.invocation_counter)
        return plain
