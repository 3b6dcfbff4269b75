"""A Mosquitto broker of the test's own (not the machine's shared one at :1883), so a
test may restart or kill it: persistent sessions on disk, anonymous, loopback only."""

import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import time

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
# Helper 4's port range (18400-18499): the brokers take the top of it.
PORTS = iter(range(18460, 18500))


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Mosquitto:
    def __init__(self, directory: Path) -> None:
        if MOSQUITTO is None:
            pytest.skip("no mosquitto binary: `apt-get install mosquitto` (the MQTT tests run their own broker)")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = next(p for p in PORTS if _free(p))
        self.conf = self.dir / "mosquitto.conf"
        # As root, mosquitto switches to its own user, which could not write this directory.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"{user}"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "log_dest none\n"
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while _free(self.port):
            assert self.process.poll() is None, "mosquitto exited"
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        """A clean stop (SIGTERM): the broker saves its sessions and queued messages."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def broker(tmp_path):
    instance = Mosquitto(tmp_path / "mosquitto")
    instance.start()
    yield instance
    instance.stop()


def publisher(broker: Mosquitto, client_id: str = "test-publisher"):
    """A QoS 1 publisher with a persistent session, so what it has in flight when the
    broker restarts is sent again."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(0.2, 2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client
