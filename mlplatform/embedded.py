"""The embedded mode's in-process parts: a Celery worker thread and a beat thread.

`runplatform` starts both next to the ASGI server so a laptop needs no broker, no
worker process and no scheduler; tests use the same functions to get a real worker."""

import logging
import threading

from celery.beat import EmbeddedService
from celery.utils.nodenames import anon_nodename
from celery.worker import WorkController

from mlplatform.celery import app

logger = logging.getLogger(__name__)


class EmbeddedWorker(WorkController):
    """A WorkController that reports when its consumer is ready (it installs no
    signal handlers, so it may run outside the main thread)."""

    def __init__(self, *args, **kwargs):
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer):
        super().on_consumer_ready(consumer)
        self.ready.set()


def start_worker_thread(
    *, queues: tuple[str, ...] = ("default", "jobs"), concurrency: int = 4, timeout: float = 30
) -> EmbeddedWorker:
    worker = EmbeddedWorker(
        app=app,
        pool="threads",
        concurrency=concurrency,
        queues=list(queues),
        hostname=anon_nodename(),
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="INFO",
    )
    threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()
    if not worker.ready.wait(timeout):
        raise RuntimeError("the embedded Celery worker did not start")
    logger.info("embedded Celery worker ready on queues %s", ",".join(queues))
    return worker


def start_beat_thread():
    service = EmbeddedService(app, thread=True)
    service.start()
    return service
