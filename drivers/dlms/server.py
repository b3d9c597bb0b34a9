"""The simulated meter's application layer: one APDU in, one APDU out (`CosemServer.handle`).

Associations per client SAP: the public client (16) without authentication, others with the
mechanism the settings give it (none, LLS password, HLS-GMAC with the 4-pass exchange), and,
with keys, suite 0 (every APDU glo-ciphered, authenticated and encrypted, the client's
invocation counter checked). GET normal / with-list / block transfer (answers longer than
`block_size` go in blocks), SET, ACTION, RLRQ. Faults by setting: a refused association and a
wrong key (the meter holds another key than the gateway). Used by drivers/dlms/sim.py and
the session tests; it reuses the same APDU code as the client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from drivers.dlms import acse
from drivers.dlms.apdu import (
    NEXT,
    NORMAL,
    WITH_LIST,
    ActionRequest,
    ActionResponse,
    GetRequest,
    GetResponse,
    SetRequest,
    SetResponse,
    parse_service,
)
from drivers.dlms.axdr import Data, Tag, encode_data
from drivers.dlms.client import ASSOCIATION_LN, ASSOCIATION_LN_CLASS, Authentication
from drivers.dlms.errors import CipherError
from drivers.dlms.notification import ExceptionResponse
from drivers.dlms.security import (
    SC_AUTHENTICATED,
    SC_ENCRYPTED,
    SERVICE_CIPHERED,
    Keys,
    hls_gmac_response,
    hls_gmac_verify,
    is_ciphered,
    open_protected,
    parse_protected,
    seal,
)
from drivers.dlms.sim_objects import SimObjects
from drivers.errors import FrameError

SERVER_TITLE: Final = bytes.fromhex("4B464D1020000001")
SERVER_PDU_SIZE: Final = 1024
BLOCK_SIZE: Final = 200  # GET answers longer than this go in blocks
SERVICE_NOT_ALLOWED: Final = 1
OPERATION_NOT_POSSIBLE: Final = 1
DECIPHERING_ERROR: Final = 5
INVOCATION_COUNTER_ERROR: Final = 6
AUTHENTICATION_FAILURE: Final = 13
AUTHENTICATION_REQUIRED: Final = 14
AUTHENTICATION_FAILURE_ACTION: Final = 250  # other-reason: the HLS answer did not verify
_GLO_TAG_OF: Final = {plain: tag for tag, (name, plain) in SERVICE_CIPHERED.items()
                      if name.startswith("glo-")}
DEFAULT_CLIENTS: Final = {16: Authentication.NONE, 17: Authentication.LLS,
                          1: Authentication.HLS_GMAC}


@dataclass
class ServerSettings:
    clients: dict[int, Authentication] = field(default_factory=lambda: dict(DEFAULT_CLIENTS))
    password: bytes = field(default=b"00000000", repr=False)
    keys: Keys | None = None
    ciphered_clients: frozenset[int] = frozenset({1})  # clients whose APDUs go suite 0
    system_title: bytes = SERVER_TITLE
    block_size: int = BLOCK_SIZE
    refuse_association: bool = False  # fault: every AARQ rejected (permanent, no reason)


@dataclass
class _Session:
    client: int
    ciphered: bool = False
    authenticated: bool = False
    client_title: bytes | None = None
    ctos: bytes = b""
    stoc: bytes = b""
    blocks: list[bytes] = field(default_factory=list)
    block_invoke: int = 0


class CosemServer:
    """One logical device: associations by client SAP over `objects`."""

    def __init__(self, objects: SimObjects, settings: ServerSettings | None = None) -> None:
        self.objects = objects
        self.settings = settings or ServerSettings()
        self._sessions: dict[int, _Session] = {}
        self._counter = 0  # the meter's own invocation counter
        self.client_counters: dict[int, int] = {}  # last seen per client, kept across sessions
        self.requests = 0

    def drop(self, client: int) -> None:
        """The link went down: the association goes with it."""
        self._sessions.pop(client, None)

    def handle(self, apdu: bytes, client: int) -> bytes:
        self.requests += 1
        if apdu[:1] == bytes([acse.AARQ]):
            return self._associate(apdu, client)
        session = self._sessions.get(client)
        if session is None:
            return ExceptionResponse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE).build()
        if apdu[:1] == bytes([acse.RLRQ]):
            self._sessions.pop(client, None)
            return acse.Release(acse.RLRE, 0).build()
        if session.ciphered:
            if not is_ciphered(apdu):
                return ExceptionResponse(SERVICE_NOT_ALLOWED, DECIPHERING_ERROR).build()
            try:
                apdu = self._open(session, apdu)
            except CipherError as error:
                return ExceptionResponse(SERVICE_NOT_ALLOWED, INVOCATION_COUNTER_ERROR
                                         if "counter" in str(error) else DECIPHERING_ERROR).build()
        answer = self._service(session, apdu)
        return self._seal(answer) if session.ciphered else answer

    # ---- association ---------------------------------------------------------------------
    def _associate(self, raw: bytes, client: int) -> bytes:
        self._sessions.pop(client, None)
        aarq = acse.Aarq.parse(raw)
        wanted = self.settings.clients.get(client)
        session = _Session(client, ciphered=aarq.context == 3, client_title=aarq.calling_ap_title)
        mechanism = {None: Authentication.NONE, 1: Authentication.LLS,
                     5: Authentication.HLS_GMAC}.get(aarq.mechanism)
        if self.settings.refuse_association or wanted is None:
            return acse.Aare(1, 1).build()
        if mechanism is not wanted:
            return acse.Aare(1, 11 if mechanism is None else AUTHENTICATION_REQUIRED,
                             mechanism=aarq.mechanism).build()
        if session.ciphered != (client in self.settings.ciphered_clients):
            return acse.Aare(1, 2).build()  # application context name not supported
        if wanted is Authentication.LLS and aarq.authentication_value != self.settings.password:
            return acse.Aare(1, AUTHENTICATION_FAILURE).build()
        try:
            initiate = aarq.user_information or b""
            if session.ciphered:
                initiate = self._open(session, initiate)
            acse.InitiateRequest.parse(initiate)
        except (FrameError, CipherError):
            return acse.Aare(1, 1).build()
        response = acse.InitiateResponse(acse.conformance_block(
            ["block_transfer_with_get_or_read", "multiple_references", "get", "set",
             "selective_access", "action"]), SERVER_PDU_SIZE).build()
        if session.ciphered:
            response = self._seal(response, 0x28)
        diagnostic, stoc = 0, None
        if wanted is Authentication.HLS_GMAC:
            session.ctos, session.stoc = aarq.authentication_value or b"", os.urandom(16)
            diagnostic, stoc = AUTHENTICATION_REQUIRED, session.stoc
        else:
            session.authenticated = True
        self._sessions[client] = session
        return acse.Aare(0, diagnostic, 1, aarq.context, self.settings.system_title,
                         aarq.mechanism, stoc, response).build()

    def _hls(self, session: _Session, request: ActionRequest) -> bytes:
        keys = self.settings.keys
        params = request.parameters
        try:
            if keys is None or session.client_title is None or params is None or not isinstance(
                    params.value, bytes):
                raise CipherError("no keys or no f(StoC)")
            hls_gmac_verify(keys, session.client_title, session.stoc, params.value)
        except CipherError:
            self._sessions.pop(session.client, None)
            return ActionResponse(AUTHENTICATION_FAILURE_ACTION, None, request.invoke).build()
        session.authenticated = True
        self._counter += 1
        answer = hls_gmac_response(keys, self.settings.system_title, self._counter, session.ctos)
        return ActionResponse(0, Data(Tag.OCTET_STRING, answer), request.invoke).build()

    # ---- services ------------------------------------------------------------------------
    def _service(self, session: _Session, apdu: bytes) -> bytes:
        try:
            request = parse_service(apdu)
        except FrameError:
            return ExceptionResponse(2, 2).build()  # service unknown
        if isinstance(request, ActionRequest) and not session.authenticated:
            method = request.method
            if (method.class_id, method.instance, method.index) == (ASSOCIATION_LN_CLASS,
                                                                      ASSOCIATION_LN, 1):
                return self._hls(session, request)
        if not session.authenticated:
            return ExceptionResponse(SERVICE_NOT_ALLOWED, OPERATION_NOT_POSSIBLE).build()
        if isinstance(request, GetRequest):
            return self._get(session, request)
        if isinstance(request, SetRequest):
            results = tuple(self.objects.set(d.class_id, d.instance, d.index, v)
                            for (d, _), v in zip(request.attributes, request.values, strict=True))
            return SetResponse(request.kind if request.kind == NORMAL else 5, request.invoke,
                               results).build()
        if isinstance(request, ActionRequest):
            m = request.method
            return ActionResponse(self.objects.action(m.class_id, m.instance, m.index), None,
                                  request.invoke).build()
        return ExceptionResponse(2, 2).build()

    def _get(self, session: _Session, request: GetRequest) -> bytes:
        if request.kind == NEXT:
            if request.block_number != session.block_invoke or not session.blocks:
                return GetResponse(NEXT, request.invoke, (), True, request.block_number,
                                   19).build()  # data-block-number-invalid
            return self._next_block(session, request.invoke)
        results = tuple(self.objects.get(d.class_id, d.instance, d.index, a)
                        for d, a in request.attributes)
        whole = GetResponse(request.kind, request.invoke, results).build()
        if len(whole) <= self.settings.block_size:
            return whole
        body = (whole[3:] if request.kind == WITH_LIST else
                b"".join(encode_data(r) for r in results if isinstance(r, Data)))
        if request.kind == NORMAL and isinstance(results[0], int):
            return whole
        size = self.settings.block_size
        session.blocks = [body[i:i + size] for i in range(0, len(body), size)]
        session.block_invoke = 0
        return self._next_block(session, request.invoke)

    def _next_block(self, session: _Session, invoke: int) -> bytes:
        session.block_invoke += 1
        data = session.blocks.pop(0)
        return GetResponse(NEXT, invoke, (), not session.blocks, session.block_invoke,
                           data).build()

    # ---- protection ----------------------------------------------------------------------
    def _open(self, session: _Session, apdu: bytes) -> bytes:
        keys = self.settings.keys
        if keys is None:
            raise CipherError("the meter has no keys")
        protected = parse_protected(apdu)
        last = self.client_counters.get(session.client)
        if last is not None and protected.invocation_counter <= last:
            raise CipherError(f"invocation counter {protected.invocation_counter} replayed")
        plain = open_protected(protected, keys, session.client_title)
        self.client_counters[session.client] = protected.invocation_counter
        return plain

    def _seal(self, plain: bytes, tag: int | None = None) -> bytes:
        keys = self.settings.keys
        assert keys is not None
        glo = tag if tag is not None else _GLO_TAG_OF.get(plain[0])
        if glo is None:  # exception-response has no glo- form: it goes plain
            return plain
        self._counter += 1
        return seal(plain, keys, self.settings.system_title, self._counter,
                    SC_AUTHENTICATED | SC_ENCRYPTED, glo)
