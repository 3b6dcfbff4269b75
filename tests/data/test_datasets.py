"""Dataset versions: uploads and stream windows become content-addressed manifests;
the same data gets the same id; bad uploads change nothing; a version whose data is
gone is broken, never shortened; aliases and tags are audited; reading streams the
data back exactly; the profile is computed off the request path."""

import datetime as dt
import hashlib
import io

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from rest_framework.test import APIClient

from data.datasets import manifest as mf
from data.datasets import profile, selectors, services, storage
from data.datasets.tasks import dataset_version_profile_task
from data.models import DataFile, Dataset, DatasetVersion, ProfileStatus, VersionStatus
from mlplatform.errors import NotFound
from mlplatform.models import AuditEvent
from mlplatform.roles import Role
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db

CSV = b"sensor,temp,status\nA,20.5,ok\nB,21.0,ok\nA,35.5,alarm\nC,,ok\n"
T0 = int(dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC).timestamp() * 1000)
HOUR = 3600 * 1000


def upload(client, slug, name, content, filename="data.csv", **extra):
    return client.post(f"/api/v1/projects/{slug}/datasets/{name}/upload/", {"file": _named(content, filename), **extra})


def _named(content: bytes, filename: str):
    handle = io.BytesIO(content)
    handle.name = filename
    return handle


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def team(dataset_dirs):
    owner, scientist, viewer, outsider = (UserFactory() for _ in range(4))
    project = make_project(owner=owner, members={scientist: Role.DATA_SCIENTIST, viewer: Role.VIEWER})
    return {"project": project, "owner": owner, "scientist": scientist, "viewer": viewer, "outsider": outsider}


# --- manifests and ids ----------------------------------------------------------------------


def test_the_version_id_is_the_sha256_of_the_canonical_manifest():
    part = mf.part("file", "a" * 64, 0, 10)
    one = mf.build([part], columns=["x"])
    same = {"filter": None, "columns": ["x"], "parts": [{"rows": [0, 10], "sha256": "a" * 64, "kind": "file"}], "v": 1}
    assert mf.digest(one) == mf.digest(same) == hashlib.sha256(mf.canonical(same)).hexdigest()
    assert mf.digest(mf.build([part])) != mf.digest(one)


@pytest.mark.parametrize(
    "bad",
    [
        {"v": 1, "parts": []},
        {"v": 1, "parts": [{"kind": "file", "sha256": "xyz", "rows": [0, 1]}]},
        {"v": 1, "parts": [{"kind": "file", "sha256": "a" * 64, "rows": [5, 5]}]},
        {"v": 1, "parts": [{"kind": "file", "sha256": "a" * 64, "rows": [0, 1]}], "filter": [["a", "~", 1]]},
    ],
)
def test_malformed_manifests_are_refused(team, bad):
    r = client_for(team["scientist"]).post(
        f"/api/v1/projects/{team['project'].slug}/datasets/x/versions/", {"manifest": bad}, format="json"
    )
    assert r.status_code == 400, r.content
    assert not DatasetVersion.objects.exists()


# --- uploads -----------------------------------------------------------------------------------


def test_an_upload_becomes_a_version_and_the_same_content_the_same_version(team):
    client, slug = client_for(team["scientist"]), team["project"].slug
    first = upload(client, slug, "pumps", CSV, description="first cut")
    assert first.status_code == 201, first.content
    body = first.json()
    version = DatasetVersion.objects.get(digest=body["id"])
    assert (
        body["rows"] == 4 and body["source"] == "upload" and body["uri"] == f"mlp-dataset://{slug}/pumps@{body['id']}"
    )
    assert [f["name"] for f in body["schema"]] == ["sensor", "temp", "status"]
    assert body["id"] == mf.digest(version.manifest)
    stored = DataFile.objects.get()
    assert version.manifest["parts"] == [{"kind": "file", "sha256": stored.sha256, "rows": [0, 4]}]
    assert hashlib.sha256(storage.file_path(stored.path).read_bytes()).hexdigest() == stored.sha256
    again = upload(client, slug, "pumps", CSV, filename="renamed.csv")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert DatasetVersion.objects.count() == 1 and DataFile.objects.count() == 1
    assert AuditEvent.objects.filter(action="dataset_version.create", object_id=str(version.pk)).count() == 1


def test_parquet_and_json_lines_uploads_read_back_the_same_table(team):
    client, slug = client_for(team["scientist"]), team["project"].slug
    frame = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", None]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parquet = upload(client, slug, "pq", buffer.getvalue(), filename="t.parquet")
    jsonl = upload(
        client, slug, "js", b'{"x": 1, "label": "a"}\n{"x": 2, "label": "b"}\n{"x": 3}\n', filename="t.jsonl"
    )
    assert parquet.status_code == jsonl.status_code == 201, (parquet.content, jsonl.content)
    for name, body in (("pq", parquet.json()), ("js", jsonl.json())):
        data = client.get(f"/api/v1/projects/{slug}/datasets/{name}/versions/{body['id']}/data?format=parquet")
        assert data.status_code == 200, data.content
        assert data["X-Dataset-Version"] == body["id"]
        back = pq.read_table(io.BytesIO(b"".join(data.streaming_content))).to_pandas()
        assert back["x"].tolist() == [1, 2, 3] and back["label"].tolist()[:2] == ["a", "b"]


def test_csv_download_streams_the_rows_exactly(team):
    client, slug = client_for(team["scientist"]), team["project"].slug
    body = upload(client, slug, "pumps", CSV).json()
    data = client.get(f"/api/v1/projects/{slug}/datasets/pumps/versions/{body['id'][:10]}/data?format=csv")
    assert data.status_code == 200 and data["Content-Type"].startswith("text/csv")
    back = pd.read_csv(io.BytesIO(b"".join(data.streaming_content)))
    assert back.equals(pd.read_csv(io.BytesIO(CSV)))


@pytest.mark.parametrize(
    ("content", "filename", "reason"),
    [
        (b"", "empty.csv", "empty"),
        (b'a,b\n1,"x"y,2\n3,4\n', "quote.csv", "Expected 2 columns"),
        (b"a,b\n1,2,3\n", "ragged.csv", "Expected 2 columns"),
        (b"a,b\n", "header.csv", "no rows"),
        (b'{"a": 1}\n{"a": "text"}\n', "mixed.jsonl", "could not be read"),
        (b"a,a\n1,2\n", "dupes.csv", "unique"),
        (b"not a parquet file", "x.parquet", "could not be read"),
        (b"x\n1\n", "data.xlsx", "Unknown file format"),
    ],
)
def test_a_malformed_upload_is_refused_with_the_reason_and_nothing_written(team, content, filename, reason):
    r = upload(client_for(team["scientist"]), team["project"].slug, "bad", content, filename=filename)
    assert r.status_code == 400, r.content
    assert reason in r.json()["error"]["message"]
    assert not Dataset.objects.exists() and not DataFile.objects.exists()
    assert not any(p.is_file() for p in storage.root().rglob("*")) if storage.root().exists() else True


def test_mixed_types_across_csv_blocks_are_refused(team, monkeypatch):
    monkeypatch.setattr(storage, "BLOCK_BYTES", 64)
    content = b"n\n" + b"".join(b"%d\n" % i for i in range(100)) + b"oops\n"
    r = upload(client_for(team["scientist"]), team["project"].slug, "bad", content)
    assert r.status_code == 400 and "conversion error" in r.json()["error"]["message"]
    assert not DataFile.objects.exists()


def test_an_upload_over_the_limit_is_413_and_stores_nothing(team, settings):
    settings.DATASET_UPLOAD_MAX_BYTES = 20
    r = upload(client_for(team["scientist"]), team["project"].slug, "big", CSV)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    assert not Dataset.objects.exists() and not DataFile.objects.exists()


# --- roles ----------------------------------------------------------------------------------


def test_viewers_read_scientists_create_owners_delete_outsiders_see_nothing(team):
    slug = team["project"].slug
    body = upload(client_for(team["scientist"]), slug, "pumps", CSV).json()
    viewer, outsider = client_for(team["viewer"]), client_for(team["outsider"])
    assert viewer.get(f"/api/v1/projects/{slug}/datasets/").json()[0]["name"] == "pumps"
    assert viewer.get(f"/api/v1/projects/{slug}/datasets/pumps/versions/{body['id']}/data").status_code == 200
    assert upload(viewer, slug, "pumps", b"a\n1\n").status_code == 403
    assert (
        viewer.put(f"/api/v1/projects/{slug}/datasets/pumps/aliases/training/", {"version": body["id"]}).status_code
        == 403
    )
    assert client_for(team["scientist"]).delete(f"/api/v1/projects/{slug}/datasets/pumps/").status_code == 403
    assert outsider.get(f"/api/v1/projects/{slug}/datasets/pumps/versions/{body['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/projects/{slug}/datasets/pumps/versions/{body['id']}/data").status_code == 404
    assert client_for(team["owner"]).delete(f"/api/v1/projects/{slug}/datasets/pumps/").status_code == 204
    assert not Dataset.objects.exists()


def test_a_dataset_uri_of_another_project_is_not_found(team):
    slug = team["project"].slug
    body = upload(client_for(team["scientist"]), slug, "pumps", CSV).json()
    other = make_project(owner=team["scientist"])
    assert selectors.version_by_ref(user=team["scientist"], text=body["uri"]).digest == body["id"]
    with pytest.raises(NotFound):
        selectors.version_by_ref(user=team["scientist"], text=body["uri"], project_slug=other.slug)
    with pytest.raises(NotFound):
        selectors.version_by_ref(user=team["outsider"], text=body["uri"])


# --- aliases and tags -------------------------------------------------------------------------


def test_aliases_move_between_versions_and_are_audited(team):
    client, slug = client_for(team["scientist"]), team["project"].slug
    v1 = upload(client, slug, "pumps", CSV).json()["id"]
    v2 = upload(client, slug, "pumps", CSV + b"D,1.0,ok\n").json()["id"]
    base = f"/api/v1/projects/{slug}/datasets/pumps"
    assert client.put(f"{base}/aliases/training/", {"version": v1[:12]}).json() == {"alias": "training", "version": v1}
    assert client.get(f"{base}/versions/training/").json()["id"] == v1
    assert client.get(f"{base}/versions/latest/").json()["id"] == v2
    client.put(f"{base}/aliases/training/", {"version": v2})
    assert client.get(f"{base}/versions/@training/").json()["rows"] == 5
    event = AuditEvent.objects.filter(action="dataset_alias.set").order_by("-pk").first()
    assert event.before == {"alias": "training", "version": v1} and event.after == {"alias": "training", "version": v2}
    assert client.put(f"{base}/aliases/Bad Alias/", {"version": v1}).status_code == 400
    assert client.put(f"{base}/versions/{v1}/tags/source/", {"value": "plant 4"}).json()["tags"] == {
        "source": "plant 4"
    }
    assert client.delete(f"{base}/aliases/training/").status_code == 204
    assert client.get(f"{base}/versions/training/").status_code == 404
    assert AuditEvent.objects.filter(action__in=["dataset_alias.delete", "dataset_version.tag_set"]).count() == 2


# --- stream windows -------------------------------------------------------------------------


def test_a_stream_window_is_a_manifest_over_the_archived_segments(team, archived_stream):
    project = team["project"]
    stream = archived_stream(
        project,
        "pumps",
        [
            (T0, [{"t": i} for i in range(3)]),
            (T0 + 3 * HOUR, [{"t": i} for i in range(3, 7)]),
            (T0 + 6 * HOUR, [{"t": 7}]),
        ],
    )
    client, base = client_for(team["scientist"]), f"/api/v1/projects/{project.slug}/datasets/window/versions/"
    start, end = (
        dt.datetime.fromtimestamp(T0 / 1000, tz=dt.UTC),
        dt.datetime.fromtimestamp((T0 + 4 * HOUR) / 1000, tz=dt.UTC),
    )
    r = client.post(base, {"stream": "pumps", "start": start.isoformat(), "end": end.isoformat()}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    version = DatasetVersion.objects.get(digest=body["id"])
    shas = list(stream.segments.order_by("first_seq").values_list("sha256", flat=True))
    assert version.manifest["parts"] == [mf.part("segment", shas[0], 0, 3), mf.part("segment", shas[1], 0, 4)]
    assert body["rows"] == 7 and body["source_detail"]["first_seq"] == 0 and body["source_detail"]["last_seq"] == 6
    again = client.post(base, {"stream": "pumps", "start": start.isoformat(), "end": end.isoformat()}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    since = client.post(base, {"stream": "pumps", "since_last": True}, format="json").json()
    assert since["rows"] == 1 and since["source_detail"]["first_seq"] == 7
    assert client.post(base, {"stream": "pumps", "since_last": True}, format="json").status_code == 400
    data = client.get(f"{base}{body['id']}/data?format=parquet")
    table = pq.read_table(io.BytesIO(b"".join(data.streaming_content)))
    assert table.column("t").to_pylist() == list(range(7)) and table.column("_seq").to_pylist() == list(range(7))


def test_a_version_whose_segment_is_gone_is_marked_broken_never_shortened(team, archived_stream, dataset_dirs):
    project = team["project"]
    stream = archived_stream(project, "pumps", [(T0, [{"t": 1}, {"t": 2}]), (T0 + 3 * HOUR, [{"t": 3}])])
    client, base = client_for(team["scientist"]), f"/api/v1/projects/{project.slug}/datasets/w/versions/"
    body = client.post(base, {"stream": "pumps"}, format="json").json()
    gone = stream.segments.order_by("first_seq").last()
    (dataset_dirs / "archive" / gone.path).unlink()
    r = client.get(f"{base}{body['id']}/data?format=csv")
    assert r.status_code == 409 and "broken" in r.json()["error"]["message"]
    version = DatasetVersion.objects.get(digest=body["id"])
    assert version.status == VersionStatus.BROKEN and gone.sha256[:12] in version.status_message
    assert AuditEvent.objects.filter(action="dataset_version.broken").exists()
    assert (
        client.put(f"/api/v1/projects/{project.slug}/datasets/w/aliases/training/", {"version": body["id"]}).status_code
        == 409
    )


def test_a_manifest_naming_content_that_is_not_stored_is_refused(team):
    manifest = mf.build([mf.part("segment", "b" * 64, 0, 10)])
    r = client_for(team["scientist"]).post(
        f"/api/v1/projects/{team['project'].slug}/datasets/x/versions/", {"manifest": manifest}, format="json"
    )
    assert r.status_code == 400 and "not stored" in r.json()["error"]["message"]


def test_a_projection_and_filter_over_an_upload(team):
    client, slug = client_for(team["scientist"]), team["project"].slug
    body = upload(client, slug, "pumps", CSV).json()
    part = DatasetVersion.objects.get(digest=body["id"]).manifest["parts"][0]
    manifest = mf.build([part], columns=["sensor", "temp"], filters=[["status", "==", "ok"], ["temp", "not null"]])
    r = client.post(f"/api/v1/projects/{slug}/datasets/ok-only/versions/", {"manifest": manifest}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["rows"] == 2 and [f["name"] for f in r.json()["schema"]] == ["sensor", "temp"]
    data = client.get(f"/api/v1/projects/{slug}/datasets/ok-only/versions/{r.json()['id']}/data?format=csv")
    assert b"".join(data.streaming_content).decode().splitlines() == ['"sensor","temp"', '"A",20.5', '"B",21']


# --- profile ----------------------------------------------------------------------------------


def test_the_profile_is_computed_by_the_task_with_the_monitoring_reference(team):
    project = team["project"]
    rows = b"x,kind\n" + b"".join(b"%d,%s\n" % (i, b"even" if i % 2 == 0 else b"odd") for i in range(1000))
    body = upload(client_for(team["scientist"]), project.slug, "numbers", rows).json()
    version = DatasetVersion.objects.get(digest=body["id"])
    assert version.profile_status == ProfileStatus.PENDING
    dataset_version_profile_task(version.pk)
    version.refresh_from_db()
    assert version.profile_status == ProfileStatus.READY
    columns = {c["name"]: c for c in version.profile["columns"]}
    x = columns["x"]
    assert (x["count"], x["nulls"], x["distinct"], x["min"], x["max"]) == (1000, 0, 1000, 0, 999)
    assert x["mean"] == pytest.approx(499.5) and x["quantiles"]["0.5"] == pytest.approx(499.5)
    assert sum(x["histogram"]["counts"]) == 1000
    assert columns["kind"]["top"] == [{"value": "even", "count": 500}, {"value": "odd", "count": 500}]
    reference = version.profile["reference"]
    assert reference["x"]["kind"] == "numeric" and reference["x"]["n"] == 1000
    assert reference["kind"]["shares"] == {"even": 0.5, "odd": 0.5}


def test_profiling_a_stream_version_learns_its_schema(team, archived_stream):
    project = team["project"]
    archived_stream(project, "s", [(T0, [{"a": 1}, {"a": 2, "b": "x"}]), (T0 + 3 * HOUR, [{"a": 2.5}])])
    version, _ = services.version_from_stream(
        project=project, name="s", stream=project.streams.get(), user=team["scientist"]
    )
    assert version.schema == {}
    result, schema = profile.profile_version(version)
    assert result["rows"] == 3
    assert {f["name"]: f["type"] for f in schema["fields"]}["a"] == "double"
    assert {c["name"]: c for c in result["columns"]}["b"]["nulls"] == 2


# --- lineage ------------------------------------------------------------------------------------


def test_lineage_runs_from_segments_through_the_version_to_runs_and_model_versions(team, archived_stream):
    from experiments import services as exp_services
    from registry import services as registry_services

    project, scientist = team["project"], team["scientist"]
    stream = archived_stream(project, "pumps", [(T0, [{"t": 1}, {"t": 2}])])
    version, _ = services.version_from_stream(project=project, name="w", stream=stream, user=scientist)
    experiment = exp_services.experiment_get_or_create(project=project, name="train", user=scientist)
    run = exp_services.run_create(experiment=experiment, user=scientist)
    source = orjson.dumps({"uri": version.uri}).decode()
    exp_services.run_log_inputs(
        run=run, datasets=[{"dataset": {"name": "w", "digest": "abc", "source_type": "mlp-dataset", "source": source}}]
    )
    model = registry_services.registered_model_create(project=project, name="m", user=scientist)
    mv = registry_services.model_version_create(
        registered_model=model, source=f"runs:/{run.pk}/model", user=scientist, run_id=run.pk
    )
    client = client_for(team["viewer"])

    graph = client.get(f"/api/v1/projects/{project.slug}/lineage/?node=version:{version.digest}&hops=2").json()
    ids = {n["id"] for n in graph["nodes"]}
    segment = stream.segments.get()
    assert {f"segment:{segment.sha256}", f"version:{version.digest}", f"run:{run.pk}", f"model_version:{mv.pk}"} <= ids
    assert {"source": f"segment:{segment.sha256}", "target": f"version:{version.digest}"} in graph["edges"]
    assert {"source": f"run:{run.pk}", "target": f"model_version:{mv.pk}"} in graph["edges"]
    upstream = client.get(f"/api/v1/projects/{project.slug}/lineage/?node=model_version:{mv.pk}&hops=3").json()
    assert f"segment:{segment.sha256}" in {n["id"] for n in upstream["nodes"]}
    other = make_project(owner=team["outsider"])
    assert (
        client_for(team["outsider"]).get(f"/api/v1/projects/{other.slug}/lineage/?node=run:{run.pk}").status_code == 404
    )
    assert client.get(f"/api/v1/projects/{project.slug}/lineage/?node=nonsense").status_code == 400


# --- diff ---------------------------------------------------------------------------------------


def test_a_diff_shows_schema_changes_row_counts_and_the_columns_that_shifted(team):
    rng = __import__("numpy").random.default_rng(1)
    base = pd.DataFrame(
        {"steady": rng.normal(0, 1, 3000), "shifted": rng.normal(0, 1, 3000), "site": ["a", "b", "c"] * 1000}
    )
    other = pd.DataFrame(
        {"steady": rng.normal(0, 1, 2500), "shifted": rng.normal(0.8, 1, 2500), "site": ["a", "b", "c", "c", "c"] * 500}
    )
    other["extra"] = 1
    client, slug = client_for(team["scientist"]), team["project"].slug
    ids = []
    for frame in (base, other):
        body = upload(client, slug, "sensors", frame.to_csv(index=False).encode()).json()
        ids.append(body["id"])
    dataset_version_profile_task(DatasetVersion.objects.get(digest=ids[0]).pk)
    r = client.get(f"/api/v1/projects/{slug}/datasets/sensors/versions/{ids[0]}/diff/?against={ids[1]}")
    assert r.status_code == 200, r.content
    result = r.json()
    assert result["rows"] == {"base": 3000, "other": 2500, "change": -500}
    assert result["schema"] == {"added": ["extra"], "removed": [], "changed": []}
    assert result["drifted"] == ["shifted", "site"]
    assert result["columns"]["shifted"]["metric"] == "psi" and result["columns"]["site"]["metric"] == "js"
    unprofiled = client.get(f"/api/v1/projects/{slug}/datasets/sensors/versions/{ids[1]}/diff/?against={ids[0]}")
    assert unprofiled.status_code == 409


def test_a_segment_whose_records_change_type_is_read_with_the_column_as_text(team, archived_stream):
    project = team["project"]
    archived_stream(project, "mixed", [(T0, [{"a": 1, "n": 1}, {"a": "x", "n": 2}, {"a": None, "n": 3}])])
    version, _ = services.version_from_stream(project=project, name="m", stream=project.streams.get(), user=None)
    data = client_for(team["viewer"]).get(
        f"/api/v1/projects/{project.slug}/datasets/m/versions/{version.digest}/data?format=parquet"
    )
    table = pq.read_table(io.BytesIO(b"".join(data.streaming_content)))
    assert table.column("a").to_pylist() == ["1", "x", None] and table.column("n").to_pylist() == [1, 2, 3]


def test_a_manifest_cannot_name_content_stored_for_another_project(team):
    slug = team["project"].slug
    body = upload(client_for(team["scientist"]), slug, "pumps", CSV).json()
    part = DatasetVersion.objects.get(digest=body["id"]).manifest["parts"][0]
    other = make_project(owner=team["outsider"])
    r = client_for(team["outsider"]).post(
        f"/api/v1/projects/{other.slug}/datasets/stolen/versions/", {"manifest": mf.build([part])}, format="json"
    )
    assert r.status_code == 400 and "not stored" in r.json()["error"]["message"]
    assert not Dataset.objects.filter(project=other).exists()


# --- garbage collection ---------------------------------------------------------------------------


def test_the_sweep_removes_only_files_no_version_names_after_a_dry_run(team, django_capture_on_commit_callbacks):
    from data.datasets import gc

    client, slug = client_for(team["scientist"]), team["project"].slug
    kept = upload(client, slug, "kept", CSV).json()
    gone = upload(client, slug, "gone", CSV + b"Z,1.0,ok\n").json()
    client_for(team["owner"]).delete(f"/api/v1/projects/{slug}/datasets/gone/")
    later = dt.datetime.now(tz=dt.UTC) + gc.GRACE * 2
    orphan = DataFile.objects.exclude(
        sha256=DatasetVersion.objects.get(digest=kept["id"]).manifest["parts"][0]["sha256"]
    ).get()
    path = storage.file_path(orphan.path)

    assert gc.files_sweep(dry_run=True).unreferenced == []  # within the grace period
    dry = gc.files_sweep(dry_run=True, now=later)
    assert dry.unreferenced == [orphan.sha256] and path.exists() and DataFile.objects.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        real = gc.files_sweep(dry_run=False, now=later)
    assert real.unreferenced == [orphan.sha256] and not path.exists()
    assert DataFile.objects.count() == 1 and AuditEvent.objects.filter(action="data_file.sweep").exists()
    data = client.get(f"/api/v1/projects/{slug}/datasets/kept/versions/{kept['id']}/data?format=csv")
    assert data.status_code == 200 and gone["id"] != kept["id"]


def test_stream_retention_keeps_the_segments_a_version_names(team, archived_stream):
    from data import segments

    project = team["project"]
    stream = archived_stream(
        project, "old", [(T0, [{"t": 0}]), (T0 + 3 * HOUR, [{"t": 1}]), (T0 + 6 * HOUR, [{"t": 2}])]
    )
    first, second, _newest = stream.segments.order_by("first_seq")
    end = dt.datetime.fromtimestamp((T0 + HOUR) / 1000, tz=dt.UTC)
    services.version_from_stream(project=project, name="kept", stream=stream, user=team["scientist"], end=end)
    stream.retention_days = 1
    stream.save(update_fields=["retention_days"])
    report = segments.stream_retention_apply(stream=stream, actor=team["owner"], dry_run=True)
    assert report["kept_referenced"] == [first.path]
    assert [d["path"] for d in report["delete"]] == [second.path]
