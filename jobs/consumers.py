"""Live job pages: one job's status, log lines and metrics; or every job's status in
the projects the user may see (the job list).

A job page greets a new connection with the job's current status (as a `job.status`
event marked `snapshot`): whatever happened between rendering the page and opening the
socket (a fast job is running by then) would otherwise never reach it."""

from channels.db import database_sync_to_async

from jobs import events as job_events
from jobs import selectors
from jobs.models import Job
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError
from projects.selectors import project_visible_ids


class JobConsumer(LiveConsumer):
    def groups_for(self, user):
        try:
            self.job = selectors.job_get(user=user, job_id=int(self.scope["url_route"]["kwargs"]["job_id"]))
        except ApplicationError:
            return None
        self.project_ids = {self.job.project_id}
        return [job_events.job_group(self.job.pk)]

    async def on_joined(self, user) -> None:
        payload = await database_sync_to_async(self._status)()
        await self.send_json({"event": "job.status", "payload": {**payload, "snapshot": True}})

    def _status(self) -> dict:
        return job_events.status_payload(Job.objects.get(pk=self.job.pk))


class JobListConsumer(LiveConsumer):
    """Follows the user's projects: one added or lost while open is joined or left."""

    def groups_for(self, user):
        return [job_events.project_group(row["pk"]) for row in project_visible_ids(user=user)]
