"""Running one assistant answer: engine stream -> coalesced delta frames -> checkpoints -> final row.

A generation belongs to its conversation, not to the socket that asked for it: it runs as a
task of its own, every socket on the conversation sees it (``realtime.hub``), a dropped
connection does not stop it, and ``stop`` (from any tab, any process) does.
"""
from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from core import logs, metrics
from core.engine import get_engine
from engine.client import ENGINE_TIMEOUT, ENGINE_UNAVAILABLE, ChatParams, EngineError
from knowledge.grounding import Grounding
from personas.models import Persona, PersonaVersion

from . import frames, outputfilter, realtime, services
from .models import Conversation, Message

logger = logging.getLogger(__name__)

CONTROL_STOP = "generation.stop"
CONTROL_WATCH = "generation.watch"


async def new_worker_name() -> str:
    """What a new answer records as its ``worker``: a control channel other processes can reach
    (shared layer), or just this process's id (in-memory layer: there are no other processes)."""
    if realtime.layer_is_shared():
        return await get_channel_layer().new_channel("generation")
    return realtime.PROCESS_ID


def chat_params(source: Persona | PersonaVersion) -> ChatParams:
    """The engine's sampling parameters from a persona version (or a persona's active copy)."""
    return ChatParams(
        model=source.model or settings.ENGINE_MODEL,
        temperature=source.temperature,
        top_p=source.top_p,
        max_tokens=source.max_tokens,
        presence_penalty=source.presence_penalty,
        frequency_penalty=source.frequency_penalty,
        stop=list(source.stop) or None,
    )


class Generation:
    def __init__(
        self,
        conversation: Conversation,
        message: Message,
        persona: Persona | PersonaVersion,
        prompt: list[dict[str, str]],
        requested_at: float | None = None,
        grounding: Grounding | None = None,
    ):
        self.conversation = conversation
        self.conversation_id = conversation.public_id
        self.message_id = message.pk
        self.seq = message.seq
        self.worker = message.worker
        self.persona = persona
        self.prompt = prompt
        # knowledge.grounding.Grounding: abstain, or quote the articles when the engine is away.
        self.grounding = grounding
        self.sources: list | None = None  # set when the answer's citations differ from the start
        # Time to first token counts from when the customer's frame arrived (loop.time()), so
        # time spent saving the turn under load is in the figure, as the customer feels it.
        self.requested_at = requested_at
        self.pieces: list[str] = []
        self.sent = 0  # code points already sent in delta frames
        self._pending: list[str] = []
        self._pending_since: float | None = None  # when the oldest unsent engine text arrived
        self._next_flush = 0.0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._coalesce = settings.CHAT_COALESCE_MS / 1000
        self.remote = False  # forward deltas to other processes (someone watches from there)
        self.stop_requested = False
        self.finalizing = False
        self.task: asyncio.Task[None] | None = None
        self._control_task: asyncio.Task[None] | None = None

    @property
    def content(self) -> str:
        return "".join(self.pieces)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        realtime.hub.generations[self.conversation_id] = self
        self.task = realtime.spawn(self.run())
        if self.worker != realtime.PROCESS_ID:
            self._control_task = realtime.spawn(self._listen_control())
        checkpointer.wake()

    def stop(self) -> None:
        """Stop streaming: closes the upstream connection (vLLM aborts), keeps the text so far."""
        if self.finalizing or self.task is None or self.task.done():
            return
        self.stop_requested = True
        self.task.cancel()

    def interrupt(self) -> None:
        """End the answer as ``interrupted`` (the server is shutting down), keeping its text."""
        if self.finalizing or self.task is None or self.task.done():
            return
        self.task.cancel()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = self.requested_at if self.requested_at is not None else loop.time()
        ttft_ms: int | None = None
        status, error_code, finish_reason, usage = Message.Status.COMPLETE, "", "", None
        replica = ""
        words = outputfilter.stream_filter()  # None unless words are listed
        logs.bind(conversation_id=self.conversation_id, message_id=self.message_id)  # this task's log lines
        metrics.ACTIVE_STREAMS.inc()
        try:
            params = chat_params(self.persona)
            grounding = self.grounding
            fixed = grounding.fixed_reply() if grounding is not None else None
            if fixed is not None:
                # Abstention (nothing in the knowledge covers it) or the offer of a person: no engine call.
                ttft_ms = round((loop.time() - started) * 1000)
                text, finish_reason = fixed
                await self.say(text)
            else:
                try:
                    async with get_engine().stream_chat(self.prompt, params) as stream:
                        ttft_ms = round((loop.time() - started) * 1000)
                        replica = stream.endpoint_url or ""
                        async for text in stream:
                            if words is not None and not (text := words.feed(text)):
                                continue  # held back: it may be the start of a listed word
                            if not self._pending:
                                self._pending_since = loop.time()
                            self._pending.append(text)
                            now = loop.time()
                            if now >= self._next_flush:
                                await self.flush()
                            elif self._flush_handle is None:
                                self._flush_handle = loop.call_later(self._next_flush - now, self._flush_later)
                        finish_reason, usage = stream.finish_reason or "", stream.usage
                    if grounding is not None and finish_reason == "stop":
                        grounding.remember("".join([*self.pieces, *self._pending]))  # reused for the same first question
                except EngineError as error:
                    offline = grounding.offline_reply() if grounding is not None else None
                    if not (offline is not None and not self.pieces and not self._pending
                            and error.code in (ENGINE_UNAVAILABLE, ENGINE_TIMEOUT)):
                        raise
                    # No engine (or none reachable) before the first token: quote the articles (when
                    # confident), or a short fixed reply in the customer's language.
                    ttft_ms = round((loop.time() - started) * 1000)
                    text, finish_reason, self.sources = offline
                    await self.say(text)
        except asyncio.CancelledError:
            status = Message.Status.STOPPED if self.stop_requested else Message.Status.INTERRUPTED
            error_code = "" if self.stop_requested else "interrupted"
        except EngineError as error:
            status, error_code = Message.Status.FAILED, error.code
            if error.started or replica:
                metrics.engine_error(replica, error.code)  # before the first token: counted by the client
            logger.warning("Answer %s failed: %s (%s)", self.message_id, error.code, error.message)
        except Exception:
            status, error_code = Message.Status.FAILED, "internal_error"
            logger.exception("Answer %s failed", self.message_id)
        finally:
            self.finalizing = True
            if words is not None and (tail := words.finish()):
                self._pending.append(tail)  # what was held back, filtered: stopped or not, it is sent
            metrics.ACTIVE_STREAMS.dec()
            metrics.ANSWERS.labels(status=str(status)).inc()
            if ttft_ms is not None:
                metrics.TIME_TO_FIRST_TOKEN.observe(ttft_ms / 1000)
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
        try:
            await self.flush()
            await database_sync_to_async(services.finish_message)(
                self.message_id,
                content=self.content,
                status=status,
                finish_reason=finish_reason if status == Message.Status.COMPLETE else "",
                usage=usage,
                ttft_ms=ttft_ms,
                duration_ms=round((loop.time() - started) * 1000),
                error_code=error_code,
                sources=self.sources if status == Message.Status.COMPLETE else None,
                output_filtered=words.replaced if words is not None else 0,
            )
        except Exception:
            logger.exception("Could not save the end of answer %s", self.message_id)
        finally:
            if realtime.hub.generations.get(self.conversation_id) is self:
                del realtime.hub.generations[self.conversation_id]
            if self._control_task is not None:
                self._control_task.cancel()

    # --- delta frames -------------------------------------------------------------------------
    async def say(self, text: str) -> None:
        """Stream a prepared answer (no engine) through the same delta frames, a paragraph at a time."""
        for paragraph in text.split("\n\n"):
            if self.pieces or self._pending:
                paragraph = "\n\n" + paragraph
            self._pending.append(paragraph)
            await self.flush()
            await asyncio.sleep(0)

    def _flush_later(self) -> None:
        self._flush_handle = None
        if not self.finalizing:
            realtime.spawn(self.flush())

    async def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        waited_since, self._pending_since = self._pending_since, None
        self.pieces.append(text)
        offset = self.sent
        self.sent += len(text)
        self._next_flush = asyncio.get_running_loop().time() + self._coalesce
        await realtime.hub.broadcast(
            self.conversation_id,
            frames.delta(seq=self.seq, offset=offset, text=text),
            remote=self.remote,
        )
        if waited_since is not None:  # engine text (not prepared text): its time inside Anyhour
            metrics.RELAY_DELAY.observe(asyncio.get_running_loop().time() - waited_since)

    async def catch_up_remote(self) -> None:
        """Someone in another process started watching: from now on forward deltas there too,
        and send them everything so far (their copy of the checkpoint may be a second old)."""
        self.remote = True
        if self.pieces and realtime.layer_is_shared():
            frame = frames.delta(seq=self.seq, offset=0, text="".join(self.pieces))
            await get_channel_layer().group_send(
                realtime.group_name(self.conversation_id),
                {"type": "chat.frame", "text": realtime.encode(frame), "origin": realtime.PROCESS_ID},
            )

    async def _listen_control(self) -> None:
        layer = get_channel_layer()
        while True:
            message = await layer.receive(self.worker)
            if message.get("type") == CONTROL_STOP:
                self.stop()
            elif message.get("type") == CONTROL_WATCH:
                await self.catch_up_remote()


async def send_control(worker: str, kind: str) -> bool:
    """Reach the generation behind ``worker`` in another process. False if it cannot be reached."""
    if not worker or worker == realtime.PROCESS_ID or not realtime.layer_is_shared() or "!" not in worker:
        return False
    await get_channel_layer().send(worker, {"type": kind})
    return True


class Checkpointer:
    """Per process, while it streams answers or holds sockets: saves the text of every live answer
    once a second (one transaction for all), and marks answers whose process died (stale
    checkpoint) as interrupted, which also tells the sockets watching them."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._last_sweep = 0.0

    def wake(self) -> None:
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        hub = realtime.hub
        while hub.generations or hub.subscribers:
            await asyncio.sleep(settings.CHAT_CHECKPOINT_SECONDS)
            await self.run_once()

    async def run_once(self) -> None:
        live = {g.message_id: g.content for g in list(realtime.hub.generations.values()) if not g.finalizing}
        try:
            if live:
                await database_sync_to_async(services.checkpoint_messages)(live)
            now = time.monotonic()
            if now - self._last_sweep > settings.CHAT_STALE_STREAM_SECONDS / 2:
                self._last_sweep = now
                await database_sync_to_async(services.mark_interrupted_streams)(exclude_ids=frozenset(live))
        except Exception:
            logger.exception("Checkpoint failed")


checkpointer = Checkpointer()


def local_generation(conversation_id: str) -> Generation | None:
    return realtime.hub.generations.get(conversation_id)


def local_generations() -> list[Generation]:
    return list(realtime.hub.generations.values())

