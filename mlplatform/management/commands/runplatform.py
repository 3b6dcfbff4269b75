"""The all-in-one embedded process: ASGI server + Celery worker thread + beat thread
(+ the MQTT ingest thread, which subscribes once a stream of source MQTT exists).

Migrates an empty (or outdated) database first, so a fresh clone needs nothing else."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
import uvicorn

from mlplatform.embedded import start_beat_thread, start_worker_thread


class Command(BaseCommand):
    help = "Run the whole platform in one process (web, websockets, worker, scheduler)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="Do not run the embedded Celery worker.")
        parser.add_argument("--no-beat", action="store_true", help="Do not run the embedded scheduler.")
        parser.add_argument("--no-mqtt", action="store_true", help="Do not run the MQTT ingest thread.")
        parser.add_argument("--concurrency", type=int, default=4, help="Worker threads (default 4).")

    def handle(self, *args, host, port, no_worker, no_beat, no_mqtt, concurrency, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not no_mqtt:
            from data.mqtt import start_thread

            start_thread()
        if not no_worker:
            start_worker_thread(concurrency=concurrency)
        if not no_beat:
            start_beat_thread()
        mode = "embedded" if settings.EMBEDDED else "production services"
        self.stdout.write(f"Serving on http://{host}:{port} ({mode}; data in {settings.DATA_DIR})", ending="\n")
        self.stdout.flush()
        uvicorn.run(
            "mlplatform.asgi:application",
            host=host,
            port=port,
            lifespan="on",  # starts the serving plane with the process (mlplatform.asgi)
            log_level="warning",
            ws_per_message_deflate=False,
            timeout_graceful_shutdown=5,
        )
