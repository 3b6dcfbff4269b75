"""The serving data plane over real HTTP: protocol, errors and how they are counted,
canary and shadow, revision swaps under load, ground truth."""

from concurrent.futures import ThreadPoolExecutor
import json
import threading
import time

import pytest
import requests

from deployments.serving.config import EndpointSpec, RevisionSpec, token_hash
from tests.deployments.conftest import COLUMNS, ROW, split_body


def revision(model_dirs, rev, key):
    return RevisionSpec(rev, str(model_dirs[key]), trusted=key == "broken")


def iris(model_dirs, rev=1, key="iris", **kwargs):
    return EndpointSpec(id=1, slug="iris", champion=revision(model_dirs, rev, key), public=True, **kwargs)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def logged(sink, **match):
    return [r for r in list(sink.records) if all(r.get(k) == v for k, v in match.items())]


def test_predictions_with_a_request_id_logged_with_inputs_and_outputs(serve, model_dirs):
    server, _, sink = serve(iris(model_dirs))
    response = requests.post(server.url("/serve/iris/invocations"), json=split_body([ROW, [6.7, 3.0, 5.2, 2.3]]))
    assert response.status_code == 200
    assert response.json() == {"predictions": [0, 2]}
    request_id = response.headers["x-request-id"]
    wait_for(lambda: logged(sink, rid=request_id))
    record = logged(sink, rid=request_id)[0]
    payload = json.loads(record["payload"])
    assert record["s"] == 200 and record["r"] == 1 and record["n"] == 2 and record["role"] == "champion"
    assert payload["in"][COLUMNS[0]] == [5.1, 6.7] and payload["out"] == [0, 2]
    echoed = requests.post(server.url("/serve/iris/invocations"), json=split_body(), headers={"X-Request-Id": "abc-1"})
    assert echoed.headers["x-request-id"] == "abc-1"


def test_mlflow_client_style_csv_and_records(serve, model_dirs):
    server, _, _ = serve(iris(model_dirs))
    csv = ",".join(COLUMNS) + "\n" + ",".join(map(str, ROW)) + "\n"
    response = requests.post(server.url("/serve/iris/invocations"), data=csv, headers={"Content-Type": "text/csv"})
    assert response.json() == {"predictions": [0]}
    records = {"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True))]}
    assert requests.post(server.url("/serve/iris/invocations"), json=records).json() == {"predictions": [0]}


def test_bad_input_is_400_or_413_with_the_error_and_counted_as_client_error(serve, model_dirs):
    server, _, sink = serve(iris(model_dirs, max_body_bytes=2000))
    url = server.url("/serve/iris/invocations")
    malformed = requests.post(url, data=b"{oops", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "BAD_REQUEST"
    columns = requests.post(url, json=split_body([ROW[:3]], COLUMNS[:3]))
    assert columns.status_code == 400 and "Model is missing inputs" in columns.json()["message"]
    types = requests.post(url, json=split_body([["x", 1.0, 1.0, 1.0]]))
    assert types.status_code == 400 and "Can not safely convert string to double" in types.json()["message"]
    big = requests.post(url, json=split_body([ROW] * 200))
    assert big.status_code == 413 and big.json()["error_code"] == "RESOURCE_EXHAUSTED"
    status = requests.get(server.url("/serve/_status")).json()
    assert status["client_errors"] == 4 and status["server_errors"] == 0
    wait_for(lambda: len(logged(sink)) == 4)
    assert sorted(r["s"] for r in logged(sink)) == [400, 400, 400, 413]
    assert all(r.get("err") for r in logged(sink))


def test_a_model_that_raises_is_500_and_counted(serve, model_dirs):
    server, _, sink = serve(iris(model_dirs, key="broken"))
    response = requests.post(server.url("/serve/iris/invocations"), json=split_body())
    assert response.status_code == 500 and response.json()["error_code"] == "INTERNAL_ERROR"
    assert requests.get(server.url("/serve/_status")).json()["server_errors"] == 1
    wait_for(lambda: logged(sink, s=500))


def test_one_bad_request_in_a_batch_fails_alone(serve, model_dirs):
    server, _, _ = serve(iris(model_dirs))
    url = server.url("/serve/iris/invocations")
    bodies = [split_body([[float("nan") if i == 3 else 5.1, 3.5, 1.4, 0.2]]) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda b: requests.post(url, data=json.dumps(b).replace("NaN", "1e999")).status_code, bodies)
        )
    assert codes.count(200) >= 15


def test_token_auth_unless_public(serve, model_dirs):
    spec = EndpointSpec(
        id=1,
        slug="iris",
        champion=RevisionSpec(1, str(model_dirs["iris"])),
        token_hashes=frozenset([token_hash("s3cret")]),
    )
    server, _, _ = serve(spec)
    url = server.url("/serve/iris/invocations")
    assert requests.post(url, json=split_body()).status_code == 401
    assert requests.post(url, json=split_body(), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert requests.post(url, json=split_body(), headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert requests.post(server.url("/serve/nope/invocations"), json=split_body()).status_code == 404


def test_pickled_models_load_only_when_trusted(serve, model_dirs):
    untrusted = EndpointSpec(id=1, slug="p", champion=RevisionSpec(7, str(model_dirs["pickled"])), public=True)
    server, source, _ = serve(untrusted)
    assert requests.post(server.url("/serve/p/invocations"), json=split_body()).status_code == 503
    assert any(rid == 7 and not ok and "trusted" in err for rid, ok, err in source.reports)
    trusted = EndpointSpec(
        id=1, slug="p", champion=RevisionSpec(8, str(model_dirs["pickled"]), trusted=True), public=True
    )
    source.set(trusted)
    wait_for(lambda: requests.post(server.url("/serve/p/invocations"), json=split_body()).status_code == 200)


def test_canary_answers_its_share_and_shadow_is_mirrored_but_never_answers(serve, model_dirs):
    challenger = RevisionSpec(2, str(model_dirs["iris2"]))
    server, source, sink = serve(iris(model_dirs, challenger=challenger, mode="canary", traffic=0.5))
    url = server.url("/serve/iris/invocations")
    for _ in range(60):
        assert requests.post(url, json=split_body()).status_code == 200
    wait_for(lambda: len(logged(sink)) >= 60)
    roles = [r["role"] for r in logged(sink)]
    assert 10 < roles.count("challenger") < 50 and roles.count("champion") + roles.count("challenger") == 60

    source.update("iris", mode="shadow", challenger=revision(model_dirs, 3, "broken"))
    wait_for(lambda: requests.get(server.url("/serve/_status")).json()["endpoints"]["iris"]["challenger"] == 3)
    response = requests.post(url, json=split_body())
    assert response.status_code == 200  # the shadow raises; the client never sees it
    rid = response.headers["x-request-id"]
    wait_for(lambda: logged(sink, rid=rid, role="shadow"))
    assert logged(sink, rid=rid, role="shadow")[0]["s"] == 500
    assert logged(sink, rid=rid, role="champion")[0]["s"] == 200


def test_a_failing_canary_falls_back_to_the_champion_and_is_logged(serve, model_dirs):
    challenger = revision(model_dirs, 2, "broken")
    server, _, sink = serve(iris(model_dirs, challenger=challenger, mode="canary", traffic=1.0))
    response = requests.post(server.url("/serve/iris/invocations"), json=split_body())
    assert response.status_code == 200 and response.json() == {"predictions": [0]}
    rid = response.headers["x-request-id"]
    wait_for(lambda: len(logged(sink, rid=rid)) == 2)
    by_role = {r["role"]: r for r in logged(sink, rid=rid)}
    assert by_role["challenger"]["s"] == 500 and by_role["challenger"]["r"] == 2
    assert by_role["champion"]["s"] == 200


@pytest.mark.parametrize(
    ("key", "how"), [("pyfunc", "input example"), ("pyfunc_signature_only", "a row built from the signature")]
)
def test_a_pyfunc_model_with_a_column_signature_warms_up_and_serves(serve, model_dirs, key, how):
    spec = RevisionSpec(5, str(model_dirs[key]), trusted=True)
    server, source, _ = serve(EndpointSpec(id=1, slug="iris", champion=spec, public=True))
    assert (5, True, f"warmed up with {how}") in source.reports
    response = requests.post(server.url("/serve/iris/invocations"), json=split_body([ROW, [6.7, 3.0, 5.2, 2.3]]))
    assert response.status_code == 200 and response.json() == {"predictions": [0, 1]}


def test_warm_up_is_skipped_with_a_reason_when_no_input_can_be_built():
    from deployments.serving.runtime import warm_up_input
    from deployments.serving.schema import InputSchema

    signature = '[{"type": "datetime", "name": "when"}, {"type": "double", "name": "x"}]'
    parsed, how = warm_up_input("/nonexistent", InputSchema.from_signature(signature))
    assert parsed is None and "['when']" in how
    assert warm_up_input("/nonexistent", None) == (
        None,
        "warm-up skipped: the version has no signature and no input example",
    )


def test_revision_swap_under_continuous_load_drops_no_request(serve, model_dirs):
    server, source, _ = serve(iris(model_dirs))
    url = server.url("/serve/iris/invocations")
    stop, codes, lock = threading.Event(), [], threading.Lock()

    def client():
        session = requests.Session()
        while not stop.is_set():
            code = session.post(url, json=split_body()).status_code
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    status = lambda: requests.get(server.url("/serve/_status")).json()["endpoints"]["iris"]["champion"]  # noqa: E731
    for revision, key in ((2, "iris2"), (3, "iris"), (4, "iris2")):
        source.update("iris", champion=RevisionSpec(revision, str(model_dirs[key])))
        wait_for(lambda revision=revision: status() == revision)
    stop.set()
    for t in threads:
        t.join()
    assert len(codes) > 20
    assert set(codes) == {200}


def test_a_revision_that_fails_to_load_leaves_the_old_one_serving(serve, model_dirs, tmp_path):
    server, source, _ = serve(iris(model_dirs))
    source.update("iris", champion=RevisionSpec(9, str(tmp_path / "missing")))
    wait_for(lambda: "9" in requests.get(server.url("/serve/_status")).json()["failed_revisions"])
    assert requests.post(server.url("/serve/iris/invocations"), json=split_body()).status_code == 200
    assert (9, False) in [(rid, ok) for rid, ok, _ in source.reports]


def test_feedback_is_accepted_and_logged_against_the_request_id(serve, model_dirs):
    server, _, sink = serve(iris(model_dirs))
    rid = requests.post(server.url("/serve/iris/invocations"), json=split_body()).headers["x-request-id"]
    response = requests.post(server.url("/serve/iris/feedback"), json={"request_id": rid, "actual": [0]})
    assert response.status_code == 202 and response.json() == {"accepted": 1}
    wait_for(lambda: logged(sink, k="f"))
    assert logged(sink, k="f")[0]["rid"] == rid
    bad = requests.post(server.url("/serve/iris/feedback"), json={"feedback": [{"actual": 1}]})
    assert bad.status_code == 400


@pytest.mark.parametrize("path", ["/serve/iris/ping", "/serve/iris/health"])
def test_health_like_mlflow(serve, model_dirs, path):
    server, _, _ = serve(iris(model_dirs))
    assert requests.get(server.url(path)).status_code == 200
