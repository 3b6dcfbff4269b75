"""Live run pages: a run's metric, status and lifecycle events (published by the run
services through experiments.services.common.publish_run) for whoever may view it."""

from experiments import selectors
from mlplatform import events
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError


class RunConsumer(LiveConsumer):
    def groups_for(self, user):
        try:
            run = selectors.run_get(user=user, run_id=self.scope["url_route"]["kwargs"]["run_id"])
        except ApplicationError:
            return None
        self.project_ids = {run.experiment.project_id}
        return [events.group_name("run", run.pk)]
