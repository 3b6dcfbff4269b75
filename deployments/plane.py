"""The serving data plane wired to Django: config from the database, log into it.

`DatabaseSource` runs in the serving app's background threads (never on the request
path): `version()` is one indexed read of ServingConfig, `load()` builds the endpoint
specs, `report()` tells the control plane a revision loaded or failed, `heartbeat()`
keeps the process's counters visible on the dashboard."""

import atexit
import os
from pathlib import Path
import socket
import threading

from django.conf import settings
from django.utils import timezone

from deployments.logsink import DatabaseSink, fresh_connection
from deployments.models import Endpoint, Revision, RevisionStatus, ServingConfig, ServingProcess
from deployments.serving.app import ServingApp
from deployments.serving.config import EndpointSpec, RevisionSpec
from deployments.serving.predlog import DrainerProcess, Spool

SERVABLE = {RevisionStatus.DEPLOYING, RevisionStatus.READY}


def _revision_spec(revision: Revision | None, *, fast_path: bool) -> RevisionSpec | None:
    if revision is None or revision.status not in SERVABLE:
        return None
    return RevisionSpec(id=revision.pk, model_dir=revision.model_dir, trusted=revision.trusted, fast_path=fast_path)


def endpoint_spec(endpoint: Endpoint) -> EndpointSpec:
    fast_path = endpoint.fast_path and settings.SERVING_FAST_PATH
    return EndpointSpec(
        id=endpoint.pk,
        slug=endpoint.slug,
        champion=_revision_spec(endpoint.champion, fast_path=fast_path),
        challenger=_revision_spec(endpoint.challenger, fast_path=fast_path),
        mode=endpoint.challenger_mode,
        traffic=endpoint.traffic,
        public=endpoint.public,
        token_hashes=frozenset([endpoint.token_hash]) if endpoint.token_hash else frozenset(),
        payload_sample=endpoint.payload_sample,
        max_body_bytes=endpoint.max_body_bytes,
        max_batch_rows=settings.SERVING_MAX_BATCH_ROWS,
        max_wait_ms=settings.SERVING_MAX_WAIT_MS,
    )


class DatabaseSource:
    def __init__(self) -> None:
        self.name = f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10000}"

    def version(self) -> str:
        fresh_connection()
        return str(ServingConfig.objects.filter(pk=1).values_list("version", flat=True).first() or 0)

    def load(self) -> dict[str, EndpointSpec]:
        fresh_connection()
        endpoints = Endpoint.objects.select_related("champion", "challenger")
        return {e.slug: endpoint_spec(e) for e in endpoints}

    def report(self, *, revision_id: int, loaded: bool, error: str = "", loader: str = "") -> None:
        from deployments import services

        fresh_connection()
        services.revision_report_load(revision_id=revision_id, loaded=loaded, error=error, loader=loader)

    def heartbeat(self, status: dict) -> None:
        fresh_connection()
        ServingProcess.objects.update_or_create(
            name=self.name,
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "config_version": status.get("config_version") or "",
                "requests": status["requests"],
                "client_errors": status["client_errors"],
                "server_errors": status["server_errors"],
                "logged": status["log"]["flushed"],
                "dropped": status["log"]["dropped"],
                "last_seen": timezone.now(),
            },
        )


def build_spool(directory: Path, *, drain: str | None = "thread") -> Spool:
    """The spool, drained by a thread, a child process (`manage.py serve`, so the
    database work never takes the serving process's GIL), or nobody (None)."""
    if drain == "process":
        return Spool(directory, drainer=DrainerProcess(directory, cwd=settings.BASE_DIR))
    if drain is None:
        from deployments.management.commands.serve import NoDrainer

        return Spool(directory, drainer=NoDrainer())
    return Spool(directory, sink=DatabaseSink())


def build_app(*, poll_interval: float | None = None) -> ServingApp:
    """The data plane mounted in the main ASGI app (runplatform): drained by a thread."""
    spool = build_spool(settings.SERVING_SPOOL_DIR)
    # Inside runplatform there is no ASGI lifespan to flush on; what is not drained
    # here stays in the spool file and the next serving process drains it.
    if settings.SERVING_DRAIN_AT_EXIT:
        atexit.register(spool.stop)
    return ServingApp(
        source=DatabaseSource(), spool=spool, poll_interval=poll_interval or settings.SERVING_POLL_INTERVAL
    )
