"""`mlp data push|streams` and `mlp datasets create|list|versions|show|pull|diff` (and
`client.data` / `client.datasets`) against the real platform on a real port: the HTTP
ingest plane on its own archive directory, uploads and downloads over HTTP, and the
bad input of each (unknown stream 4, wrong token 3, malformed file 2)."""

import csv
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
import json
import threading

import pandas as pd
import pytest

from data import archive, services
from data.archive import Limits
from data.models import DatasetVersion, QuarantinedRecord, Segment
from data.plane import build_app
from mlp_client import Client
from mlplatform import services as core_services
from mlplatform.roles import Role
from projects import services as project_services
from tests.client.conftest import run_mlp
from tests.conftest import free_port
from tests.factories import UserFactory, make_project


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="alice")


@pytest.fixture
def proj(owner):
    return make_project(owner=owner, slug="churn", name="Churn")


@pytest.fixture
def token(owner):
    return core_services.api_token_create(user=owner, name="cli")[1]


@pytest.fixture
def plane(server, settings, tmp_path, monkeypatch):
    """The live server's ingest plane on this test's archive: segments seal at the
    test's `plane.ingestor.tick()` (not on a timer), as the plane's ticker would."""
    from mlplatform import asgi

    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    settings.DATASETS_DIR = tmp_path / "datasets"
    app = build_app(archive_dir=tmp_path / "archive", limits=Limits(seconds=0), poll_interval=3600)
    monkeypatch.setattr(asgi, "ingest_app", app)
    yield app
    app.ticker.stop()
    app.ingestor.close()


@pytest.fixture
def sensors(proj, owner, plane):
    stream = services.stream_create(project=proj, actor=owner, name="Sensors")
    return stream, services.ingest_token_create(stream=stream, actor=owner)[1]


def archived(plane, stream) -> list[dict]:
    store = plane.ingestor.store
    key = f"{stream.project.slug}/{stream.slug}"
    return [r["r"] for rel in archive.stream_segments(store, key) for r in archive.read_records(store, rel)]


def write(path, text: str):
    path.write_text(text)
    return str(path)


# --- mlp data push --------------------------------------------------------------------------


def test_push_sends_json_lines_csv_and_json_in_batches_and_a_second_push_is_all_duplicates(
    server, token, sensors, plane, tmp_path
):
    stream, ingest = sensors
    lines = write(
        tmp_path / "a.jsonl", "".join(json.dumps({"sensor": s, "t": i + 0.5}) + "\n" for i, s in enumerate("abcdefg"))
    )
    result = run_mlp("data", "push", "churn/sensors", lines, "--batch", "3", "-o", "json",
                     url=server, env={"MLP_INGEST_TOKEN": ingest})  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["records"], body["batches"], body["accepted"], body["duplicates"], body["quarantined"]) == (
        7, 3, 7, 0, 0,
    )  # fmt: skip
    again = run_mlp("data", "push", "churn/sensors", lines, "--token", ingest, "-o", "json", url=server)
    assert again.exit_code == 0 and json.loads(again.stdout)["duplicates"] == 7
    assert json.loads(again.stdout)["accepted"] == 0
    # CSV cells are typed by the platform (numbers stay numbers); a .json array too.
    table = write(tmp_path / "b.csv", "sensor,t\nh,7.5\ni,8\n")
    assert run_mlp("data", "push", "churn/sensors", table, "--token", ingest, url=server).exit_code == 0
    doc = write(tmp_path / "c.json", json.dumps([{"sensor": "j", "t": 9}]))
    result = run_mlp("data", "push", "churn/sensors", doc, "--token", ingest, url=server)
    assert result.exit_code == 0 and "accepted" in result.stdout
    rows = archived(plane, stream)
    assert [r["sensor"] for r in rows] == list("abcdefghij")
    assert rows[7]["t"] == 7.5 and rows[8]["t"] == 8


def test_quarantined_records_exit_1_with_the_reason_unless_allowed(server, sensors, plane, tmp_path):
    stream, ingest = sensors
    first = write(tmp_path / "ok.json", json.dumps([{"sensor": "a", "t": 1.5}]))
    assert run_mlp("data", "push", "churn/sensors", first, "--token", ingest, url=server).exit_code == 0
    mixed = write(
        tmp_path / "mixed.jsonl", '{"sensor": "b", "t": 2}\n{"sensor": "c", "t": "hot"}\n{"sensor": "d", "t": 3}\n'
    )
    result = run_mlp("data", "push", "churn/sensors", mixed, "--token", ingest, "--batch", "2", url=server)
    assert result.exit_code == 1
    assert "1 record(s)" in result.stderr and "record 1" in result.stderr and "number" in result.stderr
    assert "quarantined" in result.stdout  # the counts are still printed
    assert [q.payload for q in QuarantinedRecord.objects.filter(stream=stream)] == [{"sensor": "c", "t": "hot"}]
    other = write(tmp_path / "other.json", json.dumps([{"sensor": "e", "t": 4}, {"sensor": "f", "t": "cold"}]))
    allowed = run_mlp("data", "push", "churn/sensors", other, "--token", ingest, "--allow-quarantine", "-o", "json",
                      url=server)  # fmt: skip
    assert allowed.exit_code == 0
    assert json.loads(allowed.stdout)["quarantined"] == 1
    assert json.loads(allowed.stdout)["reasons"][0]["record"] == 1
    assert [r["sensor"] for r in archived(plane, stream)] == ["a", "b", "d", "e"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.jsonl", '{"sensor": "a", "t": 1}\n{"sensor": "b", "t": \n', "line 2"),
        ("bad.json", '[{"sensor": "a"},', "not valid JSON"),
        ("bad.csv", "sensor,t\na,1\nb,2,3\n", "line 3: 3 fields where the header has 2"),
        ("empty.csv", "", "header row"),
        ("nothing.json", "[]", "holds no records"),
        ("notes.txt", "hello", "cannot tell its format"),
    ],
)
def test_a_malformed_file_is_a_usage_error_naming_the_line_and_sends_nothing(
    server, sensors, plane, tmp_path, name, content, message
):
    stream, ingest = sensors
    result = run_mlp("data", "push", "churn/sensors", write(tmp_path / name, content), "--token", ingest, url=server)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert archived(plane, stream) == []


def test_unknown_stream_wrong_token_no_token_and_a_paused_stream(server, owner, sensors, plane, tmp_path):
    stream, ingest = sensors
    file = write(tmp_path / "a.json", json.dumps({"sensor": "a", "t": 1}))
    unknown = run_mlp("data", "push", "churn/nope", file, "--token", ingest, url=server)
    assert unknown.exit_code == 4 and "No stream 'nope'" in unknown.stderr
    wrong = run_mlp("data", "push", "churn/sensors", file, "--token", "mlpi_wrong", url=server)
    assert wrong.exit_code == 3
    assert "ingest token was refused by stream churn/sensors" in wrong.stderr and "mlp login" not in wrong.stderr
    missing = run_mlp("data", "push", "churn/sensors", file, url=server)
    assert missing.exit_code == 2 and "MLP_INGEST_TOKEN" in missing.stderr
    assert run_mlp("data", "push", "sensors", file, "--token", ingest, url=server).exit_code == 2
    assert run_mlp("data", "push", "churn/sensors", file, "--token", ingest, "--batch", "0", url=server).exit_code == 2
    services.stream_update(stream=stream, actor=owner, status="paused")
    plane.ingestor.refresh()
    paused = run_mlp("data", "push", "churn/sensors", file, "--token", ingest, url=server)
    assert paused.exit_code == 3 and "paused" in paused.stderr
    assert archived(plane, stream) == []


def test_streams_list_and_show_and_the_python_calls(server, token, sensors, plane):
    stream, ingest = sensors
    with Client(server, token) as client:
        result = client.data.push("churn/sensors", [{"sensor": "a", "t": 1}, {"sensor": "b", "t": 2}], token=ingest,
                                  batch_size=1)  # fmt: skip
        assert (result["accepted"], result["batches"]) == (2, 2)
        plane.ingestor.tick()  # the counters reach the database
        streams = client.data.streams("churn")
        assert [s["slug"] for s in streams] == ["sensors"] and streams[0]["records_total"] == 2
    listed = run_mlp("data", "streams", "list", "churn", "-o", "json", url=server, token=token)
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["ingest_url"].endswith("/ingest/churn/sensors")
    shown = run_mlp("data", "streams", "show", "churn/sensors", "-o", "json", url=server, token=token)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["schema_inferred"] is True
    assert run_mlp("data", "streams", "show", "churn/nope", url=server, token=token).exit_code == 4
    outsider = core_services.api_token_create(user=UserFactory(), name="x")[1]
    assert run_mlp("data", "streams", "list", "churn", url=server, token=outsider).exit_code == 4


# --- mlp datasets ---------------------------------------------------------------------------

CSV = "sensor,temp,status\nA,20.5,ok\nB,21.5,ok\nA,35.5,alarm\nC,,ok\n"


def test_create_from_a_file_is_content_addressed_and_pull_streams_it_back(server, token, proj, plane, tmp_path):
    path = write(tmp_path / "readings.csv", CSV)
    made = run_mlp("datasets", "create", "churn", "readings", path, "-o", "json", url=server, token=token)
    assert made.exit_code == 0, made.output
    version = json.loads(made.stdout)
    assert version["created"] is True and version["rows"] == 4
    assert version["uri"] == f"mlp-dataset://churn/readings@{version['id']}"
    same = run_mlp("datasets", "create", "churn", "readings", path, "-o", "json", url=server, token=token)
    assert json.loads(same.stdout)["created"] is False and json.loads(same.stdout)["id"] == version["id"]
    listed = json.loads(run_mlp("datasets", "list", "churn", "-o", "json", url=server, token=token).stdout)
    assert [(d["name"], d["version_count"]) for d in listed] == [("readings", 1)]
    versions = run_mlp("datasets", "versions", "churn", "readings", "-o", "json", url=server, token=token)
    assert [v["id"] for v in json.loads(versions.stdout)] == [version["id"]]
    # CSV back exactly; Parquet back as the same table; by id prefix, `latest` or the default.
    out = tmp_path / "out"
    out.mkdir()
    pulled = run_mlp("datasets", "pull", "churn", f"readings@{version['id'][:10]}", "--format", "csv",
                     "--out", str(out / "r.csv"), "-o", "json", url=server, token=token)  # fmt: skip
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.stdout)["bytes"] == (out / "r.csv").stat().st_size
    assert list(csv.reader(io.StringIO((out / "r.csv").read_text()))) == list(csv.reader(io.StringIO(CSV)))
    parquet = run_mlp("datasets", "pull", "churn", "readings", "--out", str(out), "-o", "json", url=server, token=token)
    written = json.loads(parquet.stdout)["path"]
    assert written == str(out / f"readings-{version['id'][:12]}.parquet")
    frame = pd.read_parquet(written)
    assert list(frame["sensor"]) == ["A", "B", "A", "C"] and list(frame["temp"].fillna(-1)) == [20.5, 21.5, 35.5, -1]
    shown = run_mlp("datasets", "show", "churn", "readings@latest", "-o", "json", url=server, token=token)
    assert json.loads(shown.stdout)["id"] == version["id"]
    with Client(server, token) as client:
        got = client.datasets.pull("churn", "readings", path=tmp_path / "py.csv", format="csv")
        assert (tmp_path / "py.csv").read_text() == (out / "r.csv").read_text() and got["rows"] == 4
        assert client.datasets.versions("churn", "readings").to_pandas()["id"].tolist() == [version["id"]]


def test_upload_shows_progress_and_bad_input_is_refused(server, token, proj, plane, tmp_path):
    big = write(tmp_path / "big.csv", "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(20_000)))
    seen = []
    with Client(server, token) as client:
        made = client.datasets.create("churn", "big", big, on_progress=lambda done, total: seen.append((done, total)))
    size = (tmp_path / "big.csv").stat().st_size
    assert made["rows"] == 20_000 and seen[-1] == (size, size) and len(seen) > 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    broken = write(tmp_path / "broken.csv", "a,b\n1,2,3\n")
    result = run_mlp("datasets", "create", "churn", "broken", broken, url=server, token=token)
    assert result.exit_code == 2 and "Expected 2 columns, got 3" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")  # after the upload's progress bar
    assert run_mlp("datasets", "create", "churn", "x", url=server, token=token).exit_code == 2  # no FILE, no --stream
    both = run_mlp("datasets", "create", "churn", "x", broken, "--stream", "s", url=server, token=token)
    assert both.exit_code == 2
    assert run_mlp("datasets", "create", "nope", "x", big, url=server, token=token).exit_code == 4
    assert run_mlp("datasets", "versions", "churn", "nope", url=server, token=token).exit_code == 4
    missing = tmp_path / "gone.parquet"
    pull = run_mlp("datasets", "pull", "churn", "big@deadbeefdeadbeef", "--out", str(missing), url=server, token=token)
    assert pull.exit_code == 4 and not missing.exists() and not list(tmp_path.glob("*.part"))
    viewer = UserFactory()
    project_services.membership_add(project=proj, username=viewer.username, role=Role.VIEWER, actor=proj.owner)
    viewer_token = core_services.api_token_create(user=viewer, name="v")[1]
    refused = run_mlp("datasets", "create", "churn", "big", big, url=server, token=viewer_token)
    assert refused.exit_code == 3
    assert run_mlp("datasets", "pull", "churn", "big", "--out", str(tmp_path / "v.csv"), "--format", "csv",
                   url=server, token=viewer_token).exit_code == 0  # fmt: skip


def test_a_version_from_a_stream_window_of_pushed_records(server, token, sensors, plane, tmp_path):
    stream, ingest = sensors
    file = write(tmp_path / "a.jsonl", "".join(json.dumps({"sensor": s, "t": i}) + "\n" for i, s in enumerate("abc")))
    assert run_mlp("data", "push", "churn/sensors", file, "--token", ingest, url=server).exit_code == 0
    plane.ingestor.tick()  # seals the segment and indexes it, as the plane's ticker does
    assert Segment.objects.filter(stream=stream).count() == 1
    made = run_mlp("datasets", "create", "churn", "window", "--stream", "sensors", "--since-last", "-o", "json",
                   url=server, token=token)  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["rows"] == 3 and json.loads(made.stdout)["source"] == "stream"
    empty = run_mlp("datasets", "create", "churn", "window", "--stream", "sensors", "--since-last", url=server,
                    token=token)  # fmt: skip
    assert empty.exit_code == 2 and "no archived" in empty.stderr
    unknown = run_mlp("datasets", "create", "churn", "w", "--stream", "nope", "--since-last", url=server, token=token)
    assert unknown.exit_code == 4
    clash = run_mlp("datasets", "create", "churn", "w", "--stream", "sensors", "--since-last", "--start",
                    "2026-01-01T00:00:00Z", url=server, token=token)  # fmt: skip
    assert clash.exit_code == 2


def test_diff_waits_for_the_profile_and_shows_the_shift(server, token, proj, plane, tmp_path):
    from data.datasets.tasks import dataset_version_profile_task

    base = write(tmp_path / "base.csv", "x,site\n" + "".join(f"{i % 10},{'abc'[i % 3]}\n" for i in range(600)))
    other = write(tmp_path / "other.csv", "x,site,extra\n" + "".join(f"{i % 10 + 5},c,1\n" for i in range(500)))
    with Client(server, token) as client:
        a = client.datasets.create("churn", "s", base)["id"]
        b = client.datasets.create("churn", "s", other)["id"]
    DatasetVersion.objects.filter(digest=a).update(profile_status="pending", profile=None)
    timed_out = run_mlp("datasets", "diff", "churn", "s", a[:10], b[:10], "--timeout", "0", url=server, token=token)
    assert timed_out.exit_code == 5 and "not ready" in timed_out.stderr
    dataset_version_profile_task(DatasetVersion.objects.get(digest=a).pk)  # what the worker does
    result = run_mlp("datasets", "diff", "churn", "s", a[:10], b, "-o", "json", url=server, token=token)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["rows"] == {"base": 600, "other": 500, "change": -100}
    assert body["schema"]["added"] == ["extra"] and body["drifted"] == ["site", "x"]
    table = run_mlp("datasets", "diff", "churn", "s", a[:10], b, url=server, token=token)
    assert table.exit_code == 0 and "600 → 500 (-100)" in table.stdout and "drifted" in table.stdout
    assert run_mlp("datasets", "diff", "churn", "s", a[:10], "feedfacefeed", url=server, token=token).exit_code == 4


# --- 5xx: retried (ingest and downloads are idempotent), then exit 1 with the request id -----


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 `fail` times per path, then the real thing; remembers each request."""

    fail = 2
    seen: list[tuple[str, str]] = []
    DIGEST = "ab" * 32

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        Flaky.seen.append((self.command, path))
        if sum(1 for _, p in Flaky.seen if p == path) <= Flaky.fail:
            self._answer(503, json.dumps({"error": "the archive is busy"}).encode())
        elif path.endswith("/data"):
            self._answer(200, b"a,b\n1,2\n", "text/csv")
        elif path.startswith("/ingest/"):
            self._answer(202, json.dumps({"accepted": 1, "duplicates": 0, "quarantined": 0, "reasons": []}).encode())
        else:
            self._answer(200, json.dumps({"id": Flaky.DIGEST, "rows": 1}).encode())

    do_GET = do_POST = _handle  # noqa: N815

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def flaky_server():
    Flaky.seen, Flaky.fail = [], 2
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_5xx_on_push_or_pull_is_retried_then_exit_1_with_the_request_id(flaky_server, tmp_path):
    out = tmp_path / "d.csv"
    pulled = run_mlp("datasets", "pull", "p", "d", "--format", "csv", "--out", str(out), url=flaky_server, token="t")
    assert pulled.exit_code == 0, pulled.output
    assert out.read_bytes() == b"a,b\n1,2\n"
    assert [m for m, p in Flaky.seen if p.endswith("/data")] == ["GET"] * 3
    file = write(tmp_path / "a.jsonl", '{"x": 1}\n{"x": 2}\n')
    pushed = run_mlp("data", "push", "p/s", file, "--token", "mlpi_x", "--batch", "1", "-o", "json", url=flaky_server)
    assert pushed.exit_code == 0 and json.loads(pushed.stdout)["accepted"] == 2
    Flaky.seen, Flaky.fail = [], 99
    gone = tmp_path / "gone.csv"
    failed = run_mlp("datasets", "pull", "p", "d", "--out", str(gone), url=flaky_server, token="t",
                     env={"MLP_RETRIES": "1"})  # fmt: skip
    assert failed.exit_code == 1 and "the archive is busy" in failed.stderr and "request id" in failed.stderr
    assert not gone.exists() and not list(tmp_path.glob("*.part"))
    pushed = run_mlp("data", "push", "p/s", file, "--token", "mlpi_x", url=flaky_server, env={"MLP_RETRIES": "2"})
    assert pushed.exit_code == 1 and "after 3 attempts" in pushed.stderr
    assert [m for m, p in Flaky.seen if p.startswith("/ingest/")] == ["POST"] * 3
