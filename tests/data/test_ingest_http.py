"""HTTP ingestion on the lean plane: every body shape, the answers for bad input,
schema inference and the quarantine, dedup, and no acknowledgement without an fsync."""

import os

import orjson
import pytest

from data import archive, services
from data.archive import LocalArchiveStore
from data.models import QuarantinedRecord, Stream


def archived(app, stream):
    store = app.ingestor.store
    key = f"{stream.project.slug}/{stream.slug}"
    return [r for rel in archive.stream_segments(store, key) for r in archive.read_records(store, rel)]


def path_of(stream):
    return f"/ingest/{stream.project.slug}/{stream.slug}"


def test_json_object_array_lines_and_csv_are_archived_in_order(send, plane, stream_token):
    stream, token = stream_token
    one = send.post(path_of(stream), b'{"sensor": "a", "t": 20.5}', token=token)
    assert one.status_code == 202, one.text
    assert one.json()["accepted"] == 1 and one.json()["position"]["first_seq"] == 0
    many = send.post(path_of(stream), orjson.dumps([{"sensor": "b", "t": 21}, {"sensor": "c", "t": 22.0}]), token=token)
    lines = send.post(
        path_of(stream),
        b'{"sensor": "d", "t": 1}\n\n{"sensor": "e", "t": 2}\n',
        token=token,
        content_type="application/x-ndjson",
    )
    csv = send.post(path_of(stream), b"sensor,t\nf,3.5\ng,4\n", token=token, content_type="text/csv")
    for response, first, last in [(many, 1, 2), (lines, 3, 4), (csv, 5, 6)]:
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["position"]["first_seq"], body["position"]["last_seq"]) == (first, last)
        assert body["quarantined"] == 0 and body["duplicates"] == 0
    rows = archived(plane, stream)
    assert [r["seq"] for r in rows] == list(range(7))
    assert [r["r"]["sensor"] for r in rows] == list("abcdefg")
    assert rows[5]["r"]["t"] == 3.5 and rows[6]["r"]["t"] == 4


def test_the_first_records_define_the_schema_which_then_holds(send, plane, stream_token):
    stream, token = stream_token
    assert (
        send.post(path_of(stream), b'[{"sensor": "a", "t": 1}, {"sensor": "b", "t": 2.5}]', token=token).status_code
        == 202
    )
    stream.refresh_from_db()
    assert stream.schema_inferred is True
    assert stream.schema["properties"] == {"sensor": {"type": "string"}, "t": {"type": "number"}}
    mixed = send.post(
        path_of(stream),
        b'[{"sensor": "c", "t": 3}, {"sensor": "d", "t": "hot"}, {"t": 4}, {"sensor": "e", "t": 5}]',
        token=token,
    )
    body = mixed.json()
    assert mixed.status_code == 202 and (body["accepted"], body["quarantined"]) == (2, 2)
    assert [r["record"] for r in body["reasons"]] == [1, 2]
    assert "number" in body["reasons"][0]["reason"] and "sensor" in body["reasons"][1]["reason"]
    held = list(QuarantinedRecord.objects.filter(stream=stream).order_by("id"))
    assert [q.payload for q in held] == [{"sensor": "d", "t": "hot"}, {"t": 4}]
    assert [r["r"]["sensor"] for r in archived(plane, stream)] == ["a", "b", "c", "e"]


def test_release_after_the_schema_is_fixed(send, plane, stream_token, api_for_owner):
    stream, token = stream_token
    send.post(path_of(stream), b'{"sensor": "a", "t": 1.5}', token=token)
    send.post(path_of(stream), b'{"sensor": "b", "t": "n/a"}', token=token)
    base = f"/api/v1/projects/{stream.project.slug}/streams/{stream.slug}"
    api = api_for_owner
    assert api.get(f"{base}/quarantine/").data["count"] == 1
    still = api.post(f"{base}/quarantine/release/", {}, format="json")
    assert still.data == {"released": 0, "still_held": 1}
    schema = {"type": "object", "properties": {"sensor": {"type": "string"}, "t": {"type": ["number", "string"]}}}
    assert api.patch(f"{base}/", {"schema": schema}, format="json").status_code == 200
    released = api.post(f"{base}/quarantine/release/", {}, format="json")
    assert released.data == {"released": 1, "still_held": 0}
    rows = archived(plane, stream)
    assert [(r["seq"], r["r"]["sensor"]) for r in rows] == [(0, "a"), (1, "b")]
    record = QuarantinedRecord.objects.get()
    assert record.status == "released" and record.released_seq == 1
    assert api.post(f"{base}/quarantine/release/", {}, format="json").data == {"released": 0, "still_held": 0}
    latest = api.get(f"{base}/records/?limit=1").data["records"]
    assert latest == [{"seq": 1, "at_ms": rows[1]["t"], "record": {"sensor": "b", "t": "n/a"}}]


def test_client_message_ids_and_payload_digests_dedup(send, plane, stream_token):
    stream, token = stream_token
    first = send.post(path_of(stream), b'[{"_id": "m1", "v": 1}, {"_id": "m2", "v": 2}]', token=token).json()
    again = send.post(path_of(stream), b'[{"_id": "m1", "v": 1}, {"_id": "m3", "v": 3}]', token=token).json()
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (2, 1, 1)
    header = send.post(path_of(stream), b'{"v": 9}', token=token, headers={"x-message-id": "h-1"}).json()
    header_again = send.post(path_of(stream), b'{"v": 10}', token=token, headers={"x-message-id": "h-1"}).json()
    assert (header["accepted"], header_again["duplicates"]) == (1, 1)
    digest = send.post(path_of(stream), b'{"v": 42}', token=token).json()
    digest_again = send.post(path_of(stream), b'{"v": 42}', token=token).json()
    assert (digest["accepted"], digest_again["duplicates"]) == (1, 1)
    assert [r["seq"] for r in archived(plane, stream)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "body, content_type, line",
    [
        (b'{"a": 1', "application/json", 1),
        (b'[{"a": 1},\n{"a": 2},\n{"a": }]', "application/json", 3),
        (b'{"a": 1}\n{"a": 2}\n{"a": 3\n', "application/x-ndjson", 3),
        (b"a,b\n1,2\n3\n", "text/csv", 3),
        (b'a,b\n1,"2\n', "text/csv", 2),
        (b"", "application/json", 1),
    ],
)
def test_malformed_bodies_get_400_with_the_line_and_nothing_is_kept(
    send, plane, stream_token, body, content_type, line
):
    stream, token = stream_token
    response = send.post(path_of(stream), body, token=token, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["line"] == line and f"Line {line}" in response.json()["error"]
    assert archived(plane, stream) == [] and not QuarantinedRecord.objects.exists()


def test_an_empty_batch_and_a_too_deep_document_are_refused(send, plane, stream_token):
    stream, token = stream_token
    assert send.post(path_of(stream), b"[]", token=token).status_code == 400
    deep = send.post(path_of(stream), b"[" * 200 + b"]" * 200, token=token)
    assert deep.status_code == 400 and "nests deeper" in deep.json()["error"]


def test_auth_unknown_streams_methods_and_size(send, plane, stream_token, settings):
    stream, token = stream_token
    other = services.stream_create(project=stream.project, actor=stream.created_by, name="Other")
    _, other_token = services.ingest_token_create(stream=other, actor=stream.created_by)
    send.refresh()
    body = b'{"v": 1}'
    assert send.post(path_of(stream), body).status_code == 401
    assert send.post(path_of(stream), body, token="mlpi_wrong").status_code == 401
    assert send.post(path_of(stream), body, token=other_token).status_code == 401
    assert send.post(f"/ingest/{stream.project.slug}/nope", body, token=token).status_code == 404
    assert send.post("/ingest/nope/nope", body, token=token).status_code == 404
    assert send.post("/ingest/just-one", body, token=token).status_code == 404
    assert send.post(path_of(stream), body, token=token, method="GET").status_code == 405
    big = send.post(path_of(stream), b"[" + b'{"v": 1},' * 2_000_000 + b'{"v": 1}]', token=token)
    assert big.status_code == 413 and "limit" in big.json()["error"]
    assert archived(plane, stream) == []
    assert send.post(path_of(stream), body, token=token).status_code == 202


def test_a_revoked_token_and_a_paused_stream_stop_ingestion(send, plane, stream_token):
    stream, token = stream_token
    assert send.post(path_of(stream), b'{"v": 1}', token=token).status_code == 202
    services.stream_update(stream=stream, actor=stream.created_by, status="paused")
    send.refresh()
    assert send.post(path_of(stream), b'{"v": 2}', token=token).status_code == 409
    services.stream_update(stream=stream, actor=stream.created_by, status="active")
    services.ingest_token_revoke(token=stream.tokens.get(), actor=stream.created_by)
    send.refresh()
    assert send.post(path_of(stream), b'{"v": 3}', token=token).status_code == 401
    assert len(archived(plane, stream)) == 1


def test_no_ack_without_a_good_fsync(send, plane, stream_token, monkeypatch):
    stream, token = stream_token
    assert send.post(path_of(stream), b'{"v": 1}', token=token).status_code == 202

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    refused = send.post(path_of(stream), b'[{"v": 2}, {"v": 3}]', token=token)
    assert refused.status_code == 503 and "nothing was acknowledged" in refused.json()["error"]
    monkeypatch.undo()
    retried = send.post(path_of(stream), b'[{"v": 2}, {"v": 3}]', token=token)
    assert retried.status_code == 202 and retried.json()["position"]["first_seq"] == 1
    assert [r["r"]["v"] for r in archived(plane, stream)] == [1, 2, 3]


def test_counters_reach_the_stream_row(send, plane, stream_token):
    stream, token = stream_token
    send.post(path_of(stream), b'[{"v": 1}, {"v": 2}]', token=token)
    send.post(path_of(stream), b'[{"v": 1}, {"v": "x"}]', token=token)
    plane.ingestor.tick()
    stream.refresh_from_db()
    assert (stream.records_total, stream.duplicates_total, stream.quarantined_total) == (2, 1, 1)
    assert stream.bytes_total > 0 and stream.last_record_at is not None


def test_the_plane_is_mounted_on_the_platform(live_asgi, stream_token):
    import requests

    stream, token = stream_token
    response = requests.post(
        live_asgi + path_of(stream), data=b'{"v": 1}', headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 202 and response.json()["accepted"] == 1
    assert response.headers["x-content-type-options"] == "nosniff"
    from django.conf import settings

    rows = [
        r
        for rel in archive.stream_segments(
            LocalArchiveStore(settings.DATA_ARCHIVE_DIR), f"{stream.project.slug}/{stream.slug}"
        )
        for r in archive.read_records(LocalArchiveStore(settings.DATA_ARCHIVE_DIR), rel)
    ]
    assert [r["r"] for r in rows] == [{"v": 1}]
    assert Stream.objects.get(pk=stream.pk).schema is not None
