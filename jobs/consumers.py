"""Live job pages: one job's status, log lines and metrics; or every job's status in
the projects the user may see (the job list)."""

from jobs import events as job_events
from jobs import selectors
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError
from projects.selectors import project_visible_ids


class JobConsumer(LiveConsumer):
    def groups_for(self, user):
        try:
            job = selectors.job_get(user=user, job_id=int(self.scope["url_route"]["kwargs"]["job_id"]))
        except ApplicationError:
            return None
        self.project_ids = {job.project_id}
        return [job_events.job_group(job.pk)]


class JobListConsumer(LiveConsumer):
    """Follows the user's projects: one added or lost while open is joined or left."""

    def groups_for(self, user):
        return [job_events.project_group(row["pk"]) for row in project_visible_ids(user=user)]
