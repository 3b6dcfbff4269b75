"""The MQTT subscriber process: every stream of source MQTT, archived before the
PUBACK. Run one per set of brokers: the broker knows each subscriber by its client id
(one per broker URL and user), and a second process with the same id takes the session
over. SIGTERM/SIGINT stop it after the records in flight are acknowledged."""

import signal
import threading

from django.core.management.base import BaseCommand

from data import mqtt


class Command(BaseCommand):
    help = "Subscribe to the MQTT topics of every MQTT stream; archive each message before acknowledging it."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=None, help="Seconds between stream reloads.")

    def handle(self, *args, interval, **options):
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("MQTT ingest running (streams reloaded from the database).")
        self.stdout.flush()
        mqtt.run(stop, interval=interval)
