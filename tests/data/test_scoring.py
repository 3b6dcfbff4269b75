"""Live scoring: a stream naming an endpoint is scored through the serving plane (a
real ServingApp with a real model on uvicorn) in micro-batches, predictions archived
as `<stream>-predictions` with the revision; a retried batch lands once."""

import orjson
import pytest

from data import scoring, segments, services
from data.models import Stream
from deployments.serving.config import EndpointSpec, RevisionSpec
from tests.deployments.conftest import COLUMNS, model_dirs, serve  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_records_are_scored_and_predictions_archived_once(serve, model_dirs, settings, tmp_path, project, user):  # noqa: F811
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    server, _, _ = serve(
        EndpointSpec(id=1, slug="iris", champion=RevisionSpec(17, str(model_dirs["iris"])), public=True)
    )
    stream = services.stream_create(project=project, actor=user, name="Flowers", score_endpoint="iris")
    log = services.stream_log(stream)
    for n in range(7):
        row = ROWS[n % 3]
        log.append_sync([(orjson.dumps(dict(zip(COLUMNS, row, strict=True))), f"m:{n}")])
    base = f"http://127.0.0.1:{server.port}"
    assert scoring.stream_score_once(stream=stream, base_url=base) == 7
    assert scoring.stream_score_once(stream=stream, base_url=base) == 0  # nothing new
    log.append_sync([(orjson.dumps(dict(zip(COLUMNS, ROWS[1], strict=True))), "m:7")])
    assert scoring.streams_score(base_url=base) == {f"{project.slug}/flowers": 1}
    predictions = Stream.objects.get(slug="flowers-predictions")
    lines = list(segments.read_range(predictions, 0, 100))
    assert [line["r"]["source_seq"] for line in lines] == list(range(8))
    assert [line["r"]["prediction"] for line in lines[:3]] == [0, 2, 1]
    assert {line["r"]["revision"] for line in lines} == {"17"} and predictions.records_total == 8
    # a batch retried (the cursor lost, say) is archived once
    again = services.stream_log(predictions).append_sync([(orjson.dumps(lines[0]["r"]), "s:0")])
    assert again.accepted == 0


def test_an_endpoint_that_does_not_answer_is_retried_next_time(settings, tmp_path, project, user):
    settings.DATA_ARCHIVE_DIR = tmp_path / "archive"
    stream = services.stream_create(project=project, actor=user, name="F", score_endpoint="gone")
    services.stream_log(stream).append_sync([(orjson.dumps({"x": 1.0}), "m:0")])
    outcome = scoring.streams_score(base_url="http://127.0.0.1:9")
    assert str(outcome[f"{project.slug}/f"]).startswith("failed")
    assert Stream.objects.get(slug="f-predictions").records_total == 0
