"""A model-serving process: only /serve/..., scaled by running as many as needed.

Routing comes from the database (polled every MLP_SERVING_POLL_INTERVAL seconds),
predictions go to the prediction log through this process's spool, drained by a child
process. SIGTERM/SIGINT stop it gracefully: requests in flight are answered, the spool
is drained.

`--workers N` runs N such processes on one listening socket under uvicorn's
supervisor (which restarts a worker that dies): one Python process is bound to one core
by the GIL, so this is how one `serve` uses a machine's cores. Each worker loads every
model, polls the config and writes its own spool file; their drainers share the spool
directory (a file is drained by one drainer at a time)."""

import gc
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
import uvicorn

from deployments.serving.app import ServingApp


class NoDrainer:
    """For a process that only writes its spool; another drains the directory."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Command(BaseCommand):
    help = "Serve model endpoints at /serve/<endpoint>/invocations (the data plane only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--config", help="A JSON file of endpoint specs instead of the database.")
        parser.add_argument("--spool-dir", help="Prediction-log spool directory (default: MLP_SERVING_SPOOL_DIR).")
        parser.add_argument("--no-drain", action="store_true", help="Only write the spool; another process drains it.")
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("MLP_SERVING_WORKERS", "1")),
            help="Serving processes sharing the port (default: MLP_SERVING_WORKERS or 1).",
        )

    def handle(self, *args, host, port, config, spool_dir, no_drain, workers, **options):
        options = {
            "host": host,
            "port": port,
            "lifespan": "on",
            "log_level": "warning",
            "access_log": False,
            "loop": "uvloop",
            "http": "httptools",
            "timeout_graceful_shutdown": 10,
        }
        self.stdout.write(f"Serving model endpoints on http://{host}:{port}/serve/<endpoint>/invocations")
        self.stdout.flush()
        if workers > 1:
            # The workers are fresh interpreters: they read what to build from the environment.
            os.environ.update(
                MLP_SERVE_CONFIG=config or "",
                MLP_SERVE_SPOOL_DIR=spool_dir or "",
                MLP_SERVE_DRAIN=str(int(not no_drain)),
            )
            uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)
            return
        app = self.build(config, spool_dir=spool_dir, drain=not no_drain)
        # Long-lived objects (models, modules) need no cyclic GC passes.
        gc.freeze()
        uvicorn.run(app, **options)

    def build(self, config: str | None, *, spool_dir: str | None, drain: bool) -> ServingApp:
        from deployments.serving.config import FileSource
        from deployments.serving.predlog import Drainer, DrainerThread, MemorySink, Spool

        directory = Path(spool_dir) if spool_dir else settings.SERVING_SPOOL_DIR
        if config is None:
            from deployments.plane import DatabaseSource, build_spool

            source, spool = DatabaseSource(), build_spool(directory, drain="process" if drain else None)
        else:
            drainer = DrainerThread(Drainer(directory, sink=MemorySink())) if drain else NoDrainer()
            source, spool = FileSource(config), Spool(directory, drainer=drainer)
        return ServingApp(source=source, spool=spool, poll_interval=settings.SERVING_POLL_INTERVAL)


def worker_app() -> ServingApp:
    """uvicorn's app factory in each worker process of `serve --workers N`."""
    import django

    django.setup()
    app = Command().build(
        os.environ.get("MLP_SERVE_CONFIG") or None,
        spool_dir=os.environ.get("MLP_SERVE_SPOOL_DIR") or None,
        drain=os.environ.get("MLP_SERVE_DRAIN") == "1",
    )
    gc.freeze()
    return app
