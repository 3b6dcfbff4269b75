"""Live board fan-out: a board of 500 cards, 30 participants on websockets.

Starts the platform (`manage.py runplatform`, uvicorn; the Redis channel layer when
REDIS_URL is set, PostgreSQL when DATABASE_URL is set, else a fresh SQLite in a temp
dir), connects 30 participants to the board's websocket, and has one of them make
changes through the REST API (edits, moves, votes). For each change it measures the
time from sending the request until EVERY other participant has received the event.

    .venv/bin/python bench/ideation.py [--changes 60] [--participants 30] [--cards 500]

Prints median and p95 (target: p95 <= 250 ms) and the ratio of p95 to that target."""

import argparse
import asyncio
import json
import os
from pathlib import Path
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 250.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(data_dir: str) -> None:
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ["MLP_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def make_board(participants: int, cards: int):
    """Users, a project, a board of `cards` ideas; returns (board id, session keys, token, idea ids, lane ids)."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils.crypto import get_random_string

    from ideation import services
    from ideation.models import Idea, Lane
    from mlplatform import services as core_services
    from mlplatform.models import User
    from projects import services as project_services
    from projects.models import Membership

    tag = get_random_string(6).lower()
    users = [User.objects.create_user(f"bench-{tag}-{i}", password=None) for i in range(participants)]
    project = project_services.project_create(owner=users[0], name=f"Bench {tag}", slug=f"bench-{tag}")
    Membership.objects.bulk_create([Membership(project=project, user=u, role="stakeholder") for u in users[1:]])
    board = services.board_create(actor=users[0], title="Bench board", project=project, vote_budget=99)
    lanes = list(Lane.objects.filter(board=board).order_by("position"))
    Idea.objects.bulk_create(
        [
            Idea(
                board=board,
                lane=lanes[i % len(lanes)],
                position=i // len(lanes),
                title=f"Idea {i}",
                problem="A pain point worth a model.",
                impact=1 + i % 5,
                effort=1 + (i // 5) % 5,
                author=users[i % participants],
            )
            for i in range(cards)
        ]
    )
    keys = []
    for user in users:
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    _, token = core_services.api_token_create(user=users[0], name="bench")
    ideas = list(Idea.objects.filter(board=board).values_list("pk", flat=True))
    return board.pk, keys, token, ideas, [lane.pk for lane in lanes], settings.SESSION_COOKIE_NAME


def start_server(port: int, data_dir: str) -> subprocess.Popen:
    env = {**os.environ, "MLP_DATA_DIR": data_dir, "DJANGO_DEBUG": "1", "MLP_LOG_LEVEL": "WARNING"}
    cmd = [
        sys.executable,
        "manage.py",
        "runplatform",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-worker",
        "--no-beat",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the platform did not start")


def api(base: str, token: str, method: str, path: str, body: dict | None = None) -> None:
    request = urllib.request.Request(  # noqa: S310
        base + path,
        method=method,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


async def run(
    base: str,
    board_id: int,
    keys: list[str],
    cookie_name: str,
    token: str,
    ideas: list[int],
    lanes: list[int],
    changes: int,
) -> tuple[list[float], list[float], float]:
    import websockets

    url = base.replace("http", "ws") + f"/ws/boards/{board_id}/"
    sockets = []
    for key in keys:
        ws = await websockets.connect(
            url, additional_headers={"Cookie": f"{cookie_name}={key}", "Origin": base}, max_size=None
        )
        sockets.append(ws)
    await asyncio.sleep(2.0)  # let the presence announcements of 30 joins settle
    for ws in sockets:  # drain them
        try:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=0.05)
        except TimeoutError:
            pass

    receivers = sockets[1:]
    per_change, per_receipt, requests = [], [], []
    loop = asyncio.get_running_loop()

    async def wait_for(ws, marker: str) -> float:
        while True:
            message = json.loads(await ws.recv())
            if marker in json.dumps(message.get("payload", {})):
                return time.perf_counter()

    for n in range(changes):
        idea = ideas[(n * 37) % len(ideas)]
        kind = n % 3
        if kind == 0:
            marker = f"bench-edit-{n}"
            call = ("PATCH", f"/api/v1/boards/{board_id}/ideas/{idea}/", {"title": marker})
        elif kind == 1:
            marker = f'"id": {idea}, "lane": {lanes[n % len(lanes)]}'
            call = (
                "POST",
                f"/api/v1/boards/{board_id}/ideas/{idea}/move/",
                {"lane": lanes[n % len(lanes)], "position": 0},
            )
        else:
            marker = f'"id": {idea}, "votes"'
            call = ("POST", f"/api/v1/boards/{board_id}/ideas/{idea}/votes/", None)
        waiters = [asyncio.create_task(wait_for(ws, marker)) for ws in receivers]
        start = time.perf_counter()
        await loop.run_in_executor(None, api, base, token, *call)
        requests.append((time.perf_counter() - start) * 1000)
        done = await asyncio.wait_for(asyncio.gather(*waiters), timeout=10)
        latencies = [(t - start) * 1000 for t in done]
        per_receipt.extend(latencies)
        per_change.append(max(latencies))
        await asyncio.sleep(0.05)
    for ws in sockets:
        await ws.close()
    await asyncio.sleep(1.0)  # let the server finish the disconnects before it is stopped
    return per_change, per_receipt, requests


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--changes", type=int, default=60)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="mlp-bench-ideation-")
    setup_django(data_dir)
    board_id, keys, token, ideas, lanes, cookie_name = make_board(args.participants, args.cards)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, data_dir)
    try:
        t = time.perf_counter()
        request = urllib.request.Request(
            base + f"/ideation/boards/{board_id}/", headers={"Cookie": f"{cookie_name}={keys[0]}"}
        )  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            size = len(response.read())
        page_ms = (time.perf_counter() - t) * 1000
        per_change, per_receipt, requests = asyncio.run(
            run(base, board_id, keys, cookie_name, token, ideas, lanes, args.changes)
        )
    finally:
        server.terminate()
        server.wait(10)
    layer = "redis" if os.environ.get("REDIS_URL") else "in-memory"
    db = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    print(
        f"board: {args.cards} cards, {args.participants} participants, {args.changes} changes; "
        f"channel layer {layer}, database {db}"
    )
    print(f"board page with {args.cards} cards: {page_ms:.0f} ms, {size // 1024} KiB")
    print(
        f"change -> every other participant: median {statistics.median(per_change):.1f} ms, "
        f"p95 {p95(per_change):.1f} ms (target <= {TARGET_MS:.0f} ms; p95/target = {p95(per_change) / TARGET_MS:.2f})"
    )
    print(
        f"the change's own API request (until its response): median {statistics.median(requests):.1f} ms, "
        f"p95 {p95(requests):.1f} ms"
    )
    print(
        f"change -> one participant (all receipts): median {statistics.median(per_receipt):.1f} ms, "
        f"p95 {p95(per_receipt):.1f} ms"
    )


if __name__ == "__main__":
    main()
