"""The live board: participants join the board's group; presence is kept in the
database so every web process sees the same list."""

from channels.db import database_sync_to_async

from ideation import selectors, services
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError


class BoardConsumer(LiveConsumer):
    def groups_for(self, user):
        board_id = self.scope["url_route"]["kwargs"]["board_id"]
        try:
            self.board = selectors.board_get(user=user, board_id=board_id)
        except ApplicationError:
            return None  # not a participant, or no such board: refuse alike
        self.project_ids = {self.board.project_id}
        return [services.boards.board_group(self.board.pk)]

    async def on_joined(self, user) -> None:
        await database_sync_to_async(services.presence_join)(
            board=self.board, user=user, channel_name=self.channel_name
        )

    async def disconnect(self, code):
        if getattr(self, "board", None) is not None and self.joined:
            await database_sync_to_async(services.presence_leave)(channel_name=self.channel_name)
        await super().disconnect(code)

    async def receive_json(self, content, **kwargs):
        # Changes go through the REST API (one code path with permissions and errors);
        # the socket only answers pings, which keep presence fresh and proxies from
        # closing an idle connection.
        if content.get("type") == "ping":
            await database_sync_to_async(services.presence_seen)(channel_name=self.channel_name)
            await self.send_json({"event": "pong", "payload": {}})
