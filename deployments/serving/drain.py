"""The prediction-log drainer as its own process: `python -m deployments.serving.drain
<spool-dir> <interval> <parent-pid>`. Started by `manage.py serve`, so the database
work never competes with the serving process for its GIL. Exits after a final pass
when told to (SIGTERM) or when its parent is gone (then the parent's spool file is
unlocked, and the final pass drains and deletes it)."""

import os
import signal
import sys
import threading


def main() -> None:
    directory, interval, parent = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    import django

    django.setup()
    from deployments.logsink import DatabaseSink
    from deployments.serving.predlog import Drainer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    drainer = Drainer(directory, sink=DatabaseSink())
    while not stop.wait(interval):
        drainer.drain_all()
        if os.getppid() != parent:
            break
    drainer.drain_all()


if __name__ == "__main__":
    main()
