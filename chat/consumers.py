"""The chat websocket (docs/protocol.md). Thin: it parses frames (protocol.py), authorizes them,
calls the turn service (turn.py) or a selector, and replies with frames built in frames.py; the
answer itself streams from generation.py."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from accounts import roles
from accounts import services as account_services
from accounts.access import GUEST_SESSION_KEY, Actor, actor_for
from accounts.types import RequestUser
from core import logs, metrics
from core.engine import get_engine

from . import frames, handoff, ratings, realtime, selectors, services, startup, turn
from .generation import CONTROL_STOP, CONTROL_WATCH, checkpointer, local_generation, send_control
from .models import Conversation, Message
from .protocol import (
    AGENT_FRAMES,
    CLOSE_FLOOD,
    CLOSE_FORBIDDEN,
    CLOSE_SESSION_ENDED,
    WRITE_FRAMES,
    ProtocolError,
    TokenBucket,
    parse_client_frame,
)

logger = logging.getLogger(__name__)


def get_user_from_session(session: SessionBase) -> RequestUser:
    """The user a session belongs to, checking the password hash as Django's middleware does."""
    request = HttpRequest()
    request.session = session
    return get_user(request)


class ChatConsumer(AsyncWebsocketConsumer):
    conversation: Conversation | None = None
    # Close code for a refused connection; a subclass may set another in _resolve_actor().
    refuse_code = CLOSE_FORBIDDEN
    subprotocol: str | None = None

    async def connect(self) -> None:
        self.conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        logs.bind(conversation_id=self.conversation_id)  # the log lines of this socket's task
        self.conversation, streaming, last_seq, state = await database_sync_to_async(self._load)()
        # Accept before closing so the browser receives the close code (a rejected handshake
        # only shows up as 1006). Unknown and foreign ids are refused alike: no existence oracle.
        await self.accept(self.subprotocol)
        if self.conversation is None:
            await self.close(code=self.refuse_code)
            return
        self.bucket = TokenBucket(settings.CHAT_FRAME_RATE, settings.CHAT_FRAME_BURST, time.monotonic())
        self.refused = 0
        # Refresh what we know of the engine in the background; never delay the socket for it.
        realtime.spawn(get_engine().health_if_stale(settings.ENGINE_HEALTH_INTERVAL))
        # Logout, password change and account deletion close sockets through these groups.
        # Named by the session's stable id, not its key (which login and password change rotate).
        self.groups_joined = self._session_groups()
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        if realtime.layer_is_shared():
            # Join the group before `ready` so no frame from another process falls in between;
            # group frames are dispatched only after connect() returns, so none precedes `ready`.
            await self.channel_layer.group_add(realtime.group_name(self.conversation_id), self.channel_name)
        await self._send_frame(frames.ready(
            conversation=self.conversation_id, last_seq=last_seq, generating=streaming.seq if streaming else None,
            engine=get_engine().status(), state=state,
        ))
        # Local frames are sent straight from the answer's task, so subscribe only after `ready`
        # (and with no await in between); the client's `resume` covers anything earlier.
        realtime.hub.subscribe(self.conversation_id, id(self), self._send_text)
        metrics.OPEN_SOCKETS.inc()
        self.counted = True
        checkpointer.wake()
        self.session_watch = realtime.spawn(self._watch_session())

    def _session_groups(self) -> list[str]:
        browser_session = account_services.browser_session_id(self.scope["session"])
        self.session_tag = account_services.session_tag(browser_session)
        groups = [account_services.session_group(browser_session)]
        if self.actor.user_id is not None:
            groups.append(account_services.user_group(self.actor.user_id))
        return groups

    def _resolve_actor(self) -> Actor:
        return actor_for(self.scope.get("user"), self.scope.get("session"))

    def _load(self) -> tuple[Conversation | None, Message | None, int, frames.StatePayload | None]:
        startup.ensure_started()
        self.actor = self._resolve_actor()
        self.typing_at = 0.0
        conversation = selectors.conversation_for(self.actor, self.conversation_id)
        if conversation is None:
            return None, None, 0, None
        self.can_write = selectors.can_write(self.actor, conversation)
        streaming = services.interrupt_if_stale(conversation)
        state = frames.state_payload(handoff.state_frame(conversation))
        return conversation, streaming, selectors.last_seq(conversation), state

    async def disconnect(self, code: int) -> None:
        if self.conversation is None:
            return
        realtime.hub.unsubscribe(self.conversation_id, id(self))
        # connect() may have failed part-way: only undo what it did.
        if getattr(self, "counted", False):
            metrics.OPEN_SOCKETS.dec()
            self.counted = False
        if getattr(self, "session_watch", None) is not None:
            self.session_watch.cancel()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        if realtime.layer_is_shared():
            await self.channel_layer.group_discard(realtime.group_name(self.conversation_id), self.channel_name)

    # --- frames in ----------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.conversation is None:
            return
        if not self.bucket.take(time.monotonic()):
            self.refused += 1
            if self.refused >= settings.CHAT_FLOOD_CLOSE_AFTER:
                await self.close(code=CLOSE_FLOOD)
                return
            await self._send_frame(frames.error("rate_limited", "Too many frames",
                                                retry_after=round(self.bucket.retry_after(), 2)))
            return
        try:
            frame = parse_client_frame(text_data, bytes_data)
        except ProtocolError as error:
            await self._send_frame(error.frame())
            return
        handler = getattr(self, f"on_{frame['type']}")
        if frame["type"] in WRITE_FRAMES:
            if not await database_sync_to_async(self._session_still_valid)():
                await self.close(code=CLOSE_SESSION_ENDED)
                return
            # Staff may send the agent frames; the handoff service checks they hold the conversation.
            agent_frame = self.actor.is_staff_member and frame["type"] in AGENT_FRAMES
            if not self.can_write and not agent_frame:
                await self._send_frame(frames.error("forbidden", "Only the customer of this conversation can do that"))
                return
        try:
            await handler(frame)
        except Exception:
            logger.exception("Frame %s failed", frame["type"])
            await self._send_frame(frames.error("internal_error", "Something went wrong"))

    def _session_still_valid(self) -> bool:
        """The session the socket opened with is still current: not logged out, not expired, and
        (for an account) still for the same user with the same password."""
        session = self.scope["session"]
        key = session.session_key
        if not key or not session.exists(key):
            return False
        fresh = session.__class__(session_key=key)
        if self.actor.user_id is None:
            return fresh.get(GUEST_SESSION_KEY) == self.actor.guest_id
        user = get_user_from_session(fresh)
        if not (user.is_authenticated and user.pk == self.actor.user_id):
            return False
        # The role in force now, read from the database: a revoked role or a removed
        # authenticator closes the socket even when the change was made by a process whose
        # channel layer cannot reach this one (`manage.py role revoke` beside the embedded
        # in-memory layer), where the `session.ended` event never arrives.
        return not roles.lost_powers(self.actor.role, actor_for(user, fresh).role)

    async def _watch_session(self) -> None:
        """A session can also end silently (it expires, an admin deletes it, a role is revoked in
        another process): re-check it now and then, so a socket never outlives its session by more
        than CHAT_SESSION_RECHECK_SECONDS, nor a staff socket its powers by more than
        CHAT_STAFF_RECHECK_SECONDS."""
        interval = (
            settings.CHAT_STAFF_RECHECK_SECONDS if self.actor.is_staff_member else settings.CHAT_SESSION_RECHECK_SECONDS
        )
        while True:
            await asyncio.sleep(interval)
            if not await database_sync_to_async(self._session_still_valid)():
                await self.close(code=CLOSE_SESSION_ENDED)
                return

    async def session_ended(self, event: dict[str, Any]) -> None:
        """Logout, password change elsewhere, role change or account deletion."""
        if event.get("keep") and event["keep"] == self.session_tag:
            return
        await self.close(code=CLOSE_SESSION_ENDED)

    async def session_rotated(self, event: dict[str, Any]) -> None:
        """This browser's session got a new key (password changed here); keep checking the
        live session rather than the deleted old key. Only the server sends group events."""
        self.scope["session"] = self.scope["session"].__class__(session_key=event["session_key"])

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self._send_frame(frames.pong())

    async def on_send(self, frame: dict[str, Any]) -> None:
        assert self.conversation is not None
        client_id = frame["client_id"]
        if not self.can_write:
            await self._agent_reply(frame["text"], client_id)
            return
        try:
            started = await turn.start_answer(
                actor=self.actor, conversation=self.conversation, question=frame["text"], client_id=client_id,
                client_ip=(self.scope.get("client") or ("",))[0] or "",  # nginx's address for it (--proxy-headers)
            )
        except turn.RateLimited as limited:
            await self._send_frame(frames.error("rate_limited", "Too many messages", client_id=client_id,
                                                retry_after=limited.retry_after))
            return
        except turn.Busy:
            await self._send_frame(frames.error("busy", "An answer is still streaming", client_id=client_id))
            return
        assert started.question is not None
        await self._send_frame(frames.ack(started.question, client_id=client_id))
        if started.answer is not None:
            started.generation().start()

    async def _agent_reply(self, text: str, client_id: str) -> None:
        """The agent holding the conversation writes to the customer."""
        assert self.conversation is not None
        try:
            message = await database_sync_to_async(handoff.agent_reply)(
                agent=self.scope["user"], conversation=self.conversation, text=text, client_id=client_id
            )
        except handoff.NotYourConversation:
            # As for any reader who may not write: agents speak only in conversations they hold.
            await self._send_frame(frames.error("forbidden", "Claim the conversation before replying",
                                                client_id=client_id))
            return
        await self._send_frame(frames.ack(message, client_id=client_id))

    async def on_handoff(self, frame: dict[str, Any]) -> None:
        """The customer asks for a person; the ``conversation`` frame that follows says where they stand."""
        assert self.conversation is not None
        try:
            await database_sync_to_async(handoff.request_handoff)(
                actor=self.actor, conversation=self.conversation, reason="button"
            )
        except handoff.HandoffError as refused:
            await self._send_frame(frames.error(refused.code, str(refused)))

    async def on_rate(self, frame: dict[str, Any]) -> None:
        """Thumbs up/down (or cleared) on a finished answer; its ``message`` frame follows."""
        assert self.conversation is not None
        try:
            await database_sync_to_async(ratings.rate_answer)(
                conversation=self.conversation, seq=frame["seq"], rating=frame["rating"], comment=frame["comment"]
            )
        except ratings.NotRateable:
            await self._send_frame(frames.error("not_rateable", "There is no finished answer with that seq"))

    async def on_satisfaction(self, frame: dict[str, Any]) -> None:
        """1–5 for a resolved conversation; the ``conversation`` frame that follows carries it."""
        assert self.conversation is not None
        try:
            await database_sync_to_async(ratings.rate_conversation)(conversation=self.conversation, score=frame["score"])
        except ratings.NotRateable:
            await self._send_frame(frames.error("not_rateable", "Only a resolved conversation is rated"))

    async def on_typing(self, frame: dict[str, Any]) -> None:
        """Ephemeral: relayed to the conversation's other sockets, at most one every
        CHAT_TYPING_INTERVAL seconds per socket, never saved."""
        now = time.monotonic()
        if now - self.typing_at < settings.CHAT_TYPING_INTERVAL:
            return
        self.typing_at = now
        if self.can_write:
            await realtime.hub.broadcast(self.conversation_id, dict(frames.typing(role="user")), skip=id(self))
            return
        holder = await database_sync_to_async(handoff.holder_name)(self.conversation, self.scope["user"])
        if holder is None:
            await self._send_frame(frames.error("forbidden", "Claim the conversation before replying"))
            return
        await realtime.hub.broadcast(self.conversation_id, dict(frames.typing(role="agent", name=holder)),
                                     skip=id(self))

    async def on_regenerate(self, frame: dict[str, Any]) -> None:
        assert self.conversation is not None
        try:
            started = await turn.start_regeneration(actor=self.actor, conversation=self.conversation)
        except handoff.HandoffError as refused:
            await self._send_frame(frames.error(refused.code, str(refused)))
            return
        except turn.Busy:
            await self._send_frame(frames.error("busy", "An answer is still streaming"))
            return
        except turn.NothingToRegenerate:
            await self._send_frame(frames.error("nothing_to_regenerate", "There is no question to answer again"))
            return
        started.generation().start()

    async def on_stop(self, frame: dict[str, Any]) -> None:
        assert self.conversation is not None
        generation = local_generation(self.conversation_id)
        if generation is not None:
            generation.stop()
            return
        streaming = await database_sync_to_async(selectors.streaming_message)(self.conversation)
        if streaming is None or not await send_control(streaming.worker, CONTROL_STOP):
            await self._send_frame(frames.error("not_generating", "No answer is streaming"))

    async def on_resume(self, frame: dict[str, Any]) -> None:
        """Replay what the client lacks: messages from ``seq`` on, and the rest of a streaming one."""
        assert self.conversation is not None
        seq, offset = frame["seq"], frame["offset"]
        messages = await database_sync_to_async(selectors.messages_from)(self.conversation, seq)
        for message in messages:
            if message.status == Message.Status.STREAMING:
                await self._replay_streaming(message, offset if message.seq == seq else 0)
            else:
                await self._send_frame(frames.message(message))

    async def _replay_streaming(self, message: Message, offset: int) -> None:
        generation = local_generation(self.conversation_id)
        if generation is not None and generation.seq == message.seq:
            content = generation.content  # exact, and nothing can interleave before we send
        else:
            content = message.content  # last checkpoint; the live process sends a catch-up
            await send_control(message.worker, CONTROL_WATCH)
        await self._send_frame(frames.start(message, content=""))
        if content:
            await self._send_frame(frames.delta(seq=message.seq, offset=offset, text=content[offset:]))

    # --- frames out ---------------------------------------------------------------------------
    async def chat_frame(self, event: dict[str, Any]) -> None:
        """A frame published by another process (channel-layer group)."""
        if event.get("origin") == realtime.PROCESS_ID:
            return  # already delivered directly
        await self._send_text(event["text"])
        if event.get("worker"):
            # An answer started in another process: ask it to forward its deltas here too.
            await send_control(event["worker"], CONTROL_WATCH)

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def _send_frame(self, frame: frames.Frame) -> None:
        await self.send(text_data=realtime.encode(frame))
