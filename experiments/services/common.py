import time

from django.db.models import Model

from mlplatform import events


def now_ms() -> int:
    return int(time.time() * 1000)


def publish_run(run: Model, event: str, payload: dict) -> None:
    """Run pages and experiment tables listen on these groups."""
    events.publish(events.group_name("run", run.pk), event, payload)
    events.publish(events.group_name("experiment", run.experiment_id), event, payload)
