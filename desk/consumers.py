"""The desk's websocket (/ws/desk/, docs/desk.md): open desks join the channel-layer group
``chat.handoff.DESK_GROUP`` and hear about queue changes (``desk.queue``, published by
chat/handoff.py after the commit) and escalation alerts (``desk.alert``, from other apps). The
browser only gets a hint to re-fetch the lists over HTTP (desk/views.py ``panel``), so what it
shows always passes the views' access rules; alerts carry their own short text.

Agents and admins only: anyone else is refused with 4403 after the handshake. The socket is
closed, like the chat's, when its session ends (logout, role change)."""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts import services as account_services
from accounts.access import actor_for
from chat.handoff import DESK_GROUP
from chat.protocol import CLOSE_FORBIDDEN, CLOSE_SESSION_ENDED

ALERT_FIELDS = ("conversation", "level", "text")


class DeskConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str] = []

    async def connect(self) -> None:
        await self.accept()
        actor = await database_sync_to_async(actor_for)(self.scope.get("user"), self.scope.get("session"))
        if not actor.is_staff_member:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        browser_session = account_services.browser_session_id(self.scope["session"])
        self.session_tag = account_services.session_tag(browser_session)
        self.groups_joined = [DESK_GROUP, account_services.session_group(browser_session)]
        if actor.user_id is not None:
            self.groups_joined.append(account_services.user_group(actor.user_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "ready"})

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def desk_queue(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "queue", "conversation": event.get("conversation"), "state": event.get("state")})

    async def desk_alert(self, event: dict[str, Any]) -> None:
        """An escalation alert (issue 12): only its known fields, as strings, reach the browser."""
        alert = {name: str(event[name])[:500] for name in ALERT_FIELDS if event.get(name) is not None}
        await self.send_json({"type": "alert", **alert})

    async def session_ended(self, event: dict[str, Any]) -> None:
        if event.get("keep") and event["keep"] == self.session_tag:
            return
        await self.close(code=CLOSE_SESSION_ENDED)

    async def session_rotated(self, event: dict[str, Any]) -> None:
        """Nothing to re-check on the desk socket; the chat consumer handles the key change."""
