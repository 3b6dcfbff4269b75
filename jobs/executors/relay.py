"""The tracking relay of a container job. The container has no network, so its MLflow
client cannot reach the platform; instead the worker serves a unix socket in a small
directory mounted into the container (with jobs/container/forward.py beside it), and
the forwarder inside carries 127.0.0.1:FORWARD_PORT to that socket. Here each request
is read, its path checked against MLflow's API prefixes (anything else gets 403: the
job reaches the tracking API, nothing else of the platform nor of the network) and
sent on to MLP_PUBLIC_URL; the answer streams back. One request per connection."""

import http.client
from http.server import BaseHTTPRequestHandler
import logging
import os
from pathlib import Path
import posixpath
import re
import shutil
import socketserver
import tempfile
import threading
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

FORWARD_PORT = 5987
MOUNT = "/mlp"  # where the relay directory appears inside the container
SOCKET_NAME = "tracking.sock"
FORWARDER = Path(__file__).resolve().parent.parent / "container" / "forward.py"
ALLOWED_PREFIXES = ("/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "host", "content-length", "expect"}
)
CHUNK = 64 * 1024


# Read-only, for the job helpers' datasets.load(): a dataset version's metadata and data.
READ_ONLY = re.compile(r"/api/v1/projects/[^/]+/datasets/[^/]+/versions/[^/]+/(data)?")


def path_allowed(target: str, method: str = "GET") -> bool:
    """Only MLflow's API (and reading dataset versions), and no way around the prefix
    check (`..`, `//`, encoded). The job's token still decides what it may read."""
    if not target.startswith("/"):
        return False
    path = unquote(urlsplit(target).path)
    normal = posixpath.normpath(path) + ("/" if path.endswith("/") else "")
    if normal != path:
        return False
    return path.startswith(ALLOWED_PREFIXES) or (method in ("GET", "HEAD") and READ_ONLY.fullmatch(path) is not None)


def forwarded_command(command: list[str], python: str = "python3") -> list[str]:
    """The container's command: the forwarder, which then runs the job's command."""
    return [python, f"{MOUNT}/forward.py", str(FORWARD_PORT), f"{MOUNT}/{SOCKET_NAME}", *command]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def do_GET(self) -> None:
        self.relay()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def relay(self) -> None:
        self.close_connection = True
        if not path_allowed(self.path, self.command):
            self.answer(
                403,
                b'{"error_code": "PERMISSION_DENIED", "message": "Jobs reach the tracking API only."}',
            )
            return
        try:
            upstream = self.server.connect()
            self.send_upstream(upstream)
            response = upstream.getresponse()
        except OSError as exc:
            logger.warning("tracking relay: the platform is not reachable (%s)", exc)
            self.answer(502, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Tracking server unreachable."}')
            return
        try:
            self.send_back(response)
        finally:
            upstream.close()

    def send_upstream(self, upstream: http.client.HTTPConnection) -> None:
        upstream.putrequest(self.command, self.server.prefix + self.path, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", self.server.host)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                upstream.putheader(name, value)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        elif length or self.command in ("POST", "PUT", "PATCH"):
            upstream.putheader("Content-Length", str(length))
        upstream.endheaders()
        if chunked:
            self.copy_chunked(upstream)
        else:
            self.copy_body(upstream, length)

    def copy_body(self, upstream: http.client.HTTPConnection, length: int) -> None:
        while length > 0:
            data = self.rfile.read(min(CHUNK, length))
            if not data:
                raise OSError("the job closed the connection mid-request")
            upstream.send(data)
            length -= len(data)

    def copy_chunked(self, upstream: http.client.HTTPConnection) -> None:
        while True:
            size = int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16)
            data = self.rfile.read(size + 2)[:size] if size else b""
            upstream.send(b"%x\r\n%s\r\n" % (size, data))
            if not size:
                while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return

    def send_back(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP or name.lower() == "content-length":
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        while data := response.read(CHUNK):
            self.wfile.write(data)

    def answer(self, status: int, body: bytes) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        logger.debug("tracking relay: " + format, *args)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, upstream: str):
        super().__init__(path, _Handler)
        parts = urlsplit(upstream)
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.prefix = parts.path.rstrip("/")

    def connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, timeout=120)


class TrackingRelay:
    """The relay directory (socket + forwarder) of one container job, served in a
    thread while the job runs. Use as a context manager."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.directory = Path(tempfile.mkdtemp(prefix="mlp-relay-"))  # short: sun_path holds 108 bytes
        self.server: _Server | None = None

    def __enter__(self) -> "TrackingRelay":
        shutil.copy(FORWARDER, self.directory / "forward.py")
        self.server = _Server(str(self.directory / SOCKET_NAME), self.upstream)
        # The job runs as another user: it must traverse the directory, read the
        # forwarder and connect to the socket, but not replace either.
        os.chmod(self.directory, 0o755)  # noqa: S103 - read and traverse only
        os.chmod(self.directory / "forward.py", 0o644)
        # Connecting needs write permission; the socket only reaches the tracking API,
        # which asks for a token like any client on the network.
        os.chmod(self.directory / SOCKET_NAME, 0o666)  # noqa: S103
        threading.Thread(target=self.server.serve_forever, args=(0.2,), name="tracking-relay", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def volume(self) -> dict[str, dict[str, str]]:
        return {str(self.directory): {"bind": MOUNT, "mode": "ro"}}
