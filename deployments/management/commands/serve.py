"""A model-serving process: only /serve/..., scaled by running as many as needed.

Routing comes from the database (polled every MLP_SERVING_POLL_INTERVAL seconds),
predictions go to the prediction log through this process's spool. SIGTERM/SIGINT
stop it gracefully: requests in flight are answered, the spool is flushed."""

import gc

from django.core.management.base import BaseCommand
import uvicorn

from deployments.serving.app import ServingApp


class Command(BaseCommand):
    help = "Serve model endpoints at /serve/<endpoint>/invocations (the data plane only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument(
            "--config", help="A JSON file of endpoint specs instead of the database (no logging to it)."
        )

    def handle(self, *args, host, port, config, **options):
        app = self.build(config)
        # Long-lived objects (models, modules) need no cyclic GC passes.
        gc.freeze()
        self.stdout.write(f"Serving model endpoints on http://{host}:{port}/serve/<endpoint>/invocations")
        self.stdout.flush()
        uvicorn.run(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_level="warning",
            access_log=False,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
        )

    def build(self, config: str | None) -> ServingApp:
        if config is None:
            from deployments.plane import build_app

            return build_app(drain_in_process=True)
        from django.conf import settings

        from deployments.serving.config import FileSource
        from deployments.serving.predlog import MemorySink, Spool

        spool = Spool(settings.SERVING_SPOOL_DIR / "file-config", sink=MemorySink())
        return ServingApp(source=FileSource(config), spool=spool, poll_interval=settings.SERVING_POLL_INTERVAL)
