"""An HTTP ingest process: only /ingest/..., scaled by running as many as needed (they
append to the same archive safely: one file lock per stream). Streams and tokens come
from the database, reloaded every MLP_INGEST_POLL_INTERVAL seconds. SIGTERM/SIGINT stop
it gracefully: requests in flight are answered, counters flushed."""

from django.core.management.base import BaseCommand
import uvicorn

from data.plane import build_app


class Command(BaseCommand):
    help = "Take records at POST /ingest/<project>/<stream> (the HTTP ingest plane only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8002)

    def handle(self, *args, host, port, **options):
        app = build_app()
        self.stdout.write(f"Taking records on http://{host}:{port}/ingest/<project>/<stream>")
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
