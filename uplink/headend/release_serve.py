"""The head-end's side of an update download: chunks of a published bundle, on request
(`gateway-headend release serve --releases DIR`; docs/update.md).

`DIR/<version>/` is a published bundle (manifest.cose and its wheels). A request for anything
else (another name, a path, a dot file) is answered with size -1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from pathlib import Path
from typing import Any, Final

from uplink.errors import BadMessage, UplinkError
from uplink.mqtt import LinkConfig, LinkHandlers, MqttLink
from uplink.release_wire import ChunkAnswer, ChunkRequest, decode_request, update_topics

LOGGER = logging.getLogger(__name__)
_PLAIN: Final = re.compile(r"^[A-Za-z0-9_+!-][A-Za-z0-9_.+!-]*$")


def read_chunk(releases: Path, req: ChunkRequest) -> ChunkAnswer:
    """The bytes of `req.file` of release `req.version` from its offset, at most its length."""
    missing = ChunkAnswer(req.version, req.file, req.offset, b"", -1)
    if _PLAIN.match(req.version) is None or _PLAIN.match(req.file) is None:
        return missing
    path = releases / req.version / req.file
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(min(req.offset, size))
            data = handle.read(req.length)
    except OSError:
        return missing
    return ChunkAnswer(req.version, req.file, req.offset, data, size)


class BundleServer:
    """Answers every gateway's chunk requests from `releases`."""

    def __init__(self, releases: Path, broker_url: str, prefix: str) -> None:
        self.releases, self.broker_url, self.prefix = releases, broker_url, prefix
        self.served = 0
        self.link: MqttLink | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        cfg = LinkConfig(url=self.broker_url, client_id=f"headend-release-{uuid.uuid4().hex[:8]}",
                         clean_start=True, backoff_min_s=0.2, backoff_max_s=5.0,
                         subscriptions=(f"{self.prefix}/+/update/req",))
        self.link = MqttLink(cfg, LinkHandlers(on_connected=lambda _m: self.ready.set(),
                                               on_disconnected=lambda _r: self.ready.clear(),
                                               on_message=self._on_message),
                             asyncio.get_running_loop())
        self.link.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.link.stop()

    def _on_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or self.link is None:
            return
        gw = parts[-3]
        try:
            req = decode_request(payload)
        except BadMessage as exc:
            LOGGER.warning("update_request_refused", extra={"gw": gw, "error": str(exc)})
            return
        answer = read_chunk(self.releases, req)
        self.served += 1
        try:
            self.link.publish(update_topics(self.prefix, gw)["chunk"], answer.encode(), qos=0)
        except UplinkError as exc:  # the link dropped: the gateway asks again
            LOGGER.warning("update_chunk_not_sent", extra={"gw": gw, "error": str(exc)})


def cmd_release_serve(args: Any) -> int:
    server = BundleServer(Path(args.bundle), args.broker, args.prefix)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.run())
    return 0
