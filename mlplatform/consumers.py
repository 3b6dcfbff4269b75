"""The base of every live page's consumer: authenticate, join groups, forward.

Subclasses say which groups a connection may join (`groups_for`), checking the user's
access there; everything published with mlplatform.events reaches the browser as
`{"event": ..., "payload": ...}`."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from mlplatform import events, jsondepth

CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class LiveConsumer(AsyncJsonWebsocketConsumer):
    joined: list[str]
    # The projects this socket shows (set by groups_for): a change of the user's access
    # to one of them makes it check again. None: any change of the user's access does.
    project_ids: set[int | None] | None = None
    revoked = False

    async def connect(self):
        self.joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Joined before the check, so that a change committed during it is not missed.
        self.access_group = events.access_group(user.pk)
        await self.channel_layer.group_add(self.access_group, self.channel_name)
        groups = await database_sync_to_async(self.groups_for)(user)
        if groups is None:
            await self.channel_layer.group_discard(self.access_group, self.channel_name)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        await self.on_joined(user)

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []
        if getattr(self, "access_group", None):
            await self.channel_layer.group_discard(self.access_group, self.channel_name)
            self.access_group = None

    async def access_changed(self, message):
        """The user's membership or role changed, or their account (deactivated, no
        longer a platform admin): check again with what the database
        says now (a fresh user: roles are cached on the user object). Lost access
        closes the socket; a multi-project socket follows the projects it may see."""
        project_id = message.get("project_id")  # None: the user's access everywhere
        if self.revoked or (None not in (project_id, self.project_ids) and project_id not in self.project_ids):
            return
        groups = await database_sync_to_async(self._groups_now)()
        if groups is None:
            await self.revoke()
            return
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(groups) - set(self.joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = list(groups)

    def _groups_now(self) -> list[str] | None:
        from mlplatform.models import User

        user = User.objects.filter(pk=self.scope["user"].pk, is_active=True).first()
        return self.groups_for(user) if user is not None else None

    async def revoke(self) -> None:
        """Leaves every group and closes with 4403; nothing is sent after it (events
        already queued for this socket are dropped)."""
        await self.disconnect(CLOSE_FORBIDDEN)
        self.revoked = True
        await self.close(code=CLOSE_FORBIDDEN)

    async def send_json(self, content, close=False):
        if not self.revoked:
            await super().send_json(content, close=close)

    def groups_for(self, user) -> list[str] | None:
        """Groups this user may join on this connection, or None to refuse it."""
        raise NotImplementedError

    async def on_joined(self, user) -> None:
        """Hook for consumers that greet a new connection (presence, a snapshot)."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A message that is not JSON, or nests too deep to parse safely, closes the
        socket with 4400 instead of crashing the consumer."""
        if text_data is None:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        try:
            content = jsondepth.loads(text_data)
        except ValueError:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        await self.receive_json(content, **kwargs)

    async def event_message(self, message):
        group = message.get("group")
        if group is not None and group not in self.joined:
            return  # queued before this socket left the group (access lost)
        await self.send_json({"event": message["event"], "payload": message["payload"]})


class NotificationsConsumer(LiveConsumer):
    """A user's own notifications: automatic actions, invitations, finished jobs."""

    def groups_for(self, user):
        return [events.group_name("user", user.pk)]
