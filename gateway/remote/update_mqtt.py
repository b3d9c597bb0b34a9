"""The gateway's chunk transport over MQTT (docs/update.md): a connection of its own for the
length of a download, subscribed to `<prefix>/<gw>/update/chunk`; each request published to
`<prefix>/<gw>/update/req` and answered within `answer_timeout_s` (TimeoutError: the caller
keeps what it has and resumes later)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Final

from gateway.remote.update_fetch import Chunk
from uplink.errors import BadMessage, UplinkError
from uplink.mqtt import LinkConfig, LinkHandlers, MqttLink
from uplink.release import BundleError
from uplink.release_wire import ChunkAnswer, ChunkRequest, decode_answer, update_topics

ANSWER_TIMEOUT_S: Final = 30.0
ASK_EVERY_S: Final = 2.0


class MqttChunks:
    """An async context manager; `await chunks(version, file, offset, length)` is a Transport."""

    def __init__(self, link_config: LinkConfig, prefix: str, gw: str,
                 answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self.topics = update_topics(prefix, gw)
        self.cfg = replace(link_config,
                           client_id=f"{link_config.client_id}-update-{uuid.uuid4().hex[:6]}",
                           clean_start=True, subscriptions=(self.topics["chunk"],), will=None,
                           birth=None)
        self.answer_timeout_s = answer_timeout_s
        self.connected = asyncio.Event()
        self.answers: asyncio.Queue[ChunkAnswer] = asyncio.Queue()
        self.link: MqttLink | None = None

    async def __aenter__(self) -> MqttChunks:
        self.link = MqttLink(self.cfg, LinkHandlers(on_connected=lambda _m: self.connected.set(),
                                                    on_disconnected=self._lost,
                                                    on_message=self._on_message),
                             asyncio.get_running_loop())
        self.link.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.link is not None:
            await self.link.stop()

    def _lost(self, reason: str) -> None:
        self.connected.clear()

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            self.answers.put_nowait(decode_answer(payload))
        except BadMessage:
            return  # a stray or damaged answer: the request times out and is asked again

    async def __call__(self, version: str, file: str, offset: int, length: int) -> Chunk:
        """The chunk, asked again every `ask_every_s` (QoS 0 both ways: a request sent while the
        head-end reconnects is lost); TimeoutError after `answer_timeout_s` in all."""
        async with asyncio.timeout(self.answer_timeout_s):
            while True:
                await self.connected.wait()
                self._ask(ChunkRequest(version, file, offset, length))
                try:
                    async with asyncio.timeout(ASK_EVERY_S):
                        answer = await self._answer(version, file, offset)
                    break
                except TimeoutError:
                    continue
        if answer.size < 0:
            raise BundleError("no_such_release", f"the head-end has no {file} of {version}")
        return Chunk(answer.offset, answer.data, answer.size)

    def _ask(self, req: ChunkRequest) -> None:
        assert self.link is not None
        try:
            self.link.publish(self.topics["req"], req.encode(), qos=0)
        except UplinkError as exc:
            raise ConnectionError(str(exc)) from None

    async def _answer(self, version: str, file: str, offset: int) -> ChunkAnswer:
        while True:  # answers to an earlier ask of another chunk are dropped
            answer = await self.answers.get()
            if (answer.version, answer.file, answer.offset) == (version, file, offset):
                return answer
