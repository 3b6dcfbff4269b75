import math

import pytest

from experiments import selectors, services
from experiments.models import LatestMetric, Metric, Param, RunStatus
from mlplatform.errors import NotFound, ValidationFailed
from mlplatform.roles import Role
from tests.factories import UserFactory, make_project


def find(user, experiment, **kwargs):
    return selectors.run_search(user=user, experiment_ids=[str(experiment.pk)], **kwargs)


@pytest.fixture
def experiment(project, user):
    return services.experiment_get_or_create(project=project, name="exp", user=user)


def test_run_lifecycle_and_batch(experiment, user):
    run = services.run_create(experiment=experiment, user=user, name="r1", tags={"a": "b"})
    assert len(run.pk) == 32 and run.status == RunStatus.RUNNING
    services.run_log_batch(
        run=run,
        metrics=[
            ("loss", 1.0, 0, 1000),
            ("loss", 0.5, 1, 2000),
            {"key": "acc", "value": "NaN", "timestamp": 5, "step": 0},
        ],
        params=[("lr", "0.1")],
        tags={"t": "v"},
    )
    services.run_log_batch(run=run, metrics=[("loss", float("inf"), 2, 3000)], params=[("lr", "0.1")])
    assert Metric.objects.filter(run=run).count() == 4
    latest = {lm.key: lm for lm in LatestMetric.objects.filter(run=run)}
    assert latest["loss"].step == 2 and math.isinf(latest["loss"].value)
    assert latest["acc"].is_nan
    with pytest.raises(ValidationFailed, match="Changing param values is not allowed"):
        services.run_log_batch(run=run, params=[("lr", "0.2")])
    assert Param.objects.get(run=run, key="lr").value == "0.1"
    run = services.run_update(run=run, status="FINISHED")
    assert run.end_time is not None
    history = selectors.metric_history(user=user, run_id=run.pk, key="loss")[0]
    assert [p[3] for p in history] == [0, 1, 2]


def test_batch_limits(experiment, user):
    run = services.run_create(experiment=experiment, user=user)
    with pytest.raises(ValidationFailed, match="at most 1000 metrics"):
        services.run_log_batch(run=run, metrics=[("m", 1.0, i, 1) for i in range(1001)])
    with pytest.raises(ValidationFailed, match="at most 100 params"):
        services.run_log_batch(run=run, params=[(f"p{i}", "v") for i in range(101)])
    with pytest.raises(ValidationFailed, match="at most 100 tags"):
        services.run_log_batch(run=run, tags=[(f"t{i}", "v") for i in range(101)])
    with pytest.raises(ValidationFailed, match="6000"):
        services.run_log_batch(run=run, params=[("long", "x" * 6001)])


def test_other_project_run_is_not_found(experiment, user):
    run = services.run_create(experiment=experiment, user=user)
    stranger = UserFactory()
    make_project(owner=stranger)
    with pytest.raises(NotFound):
        selectors.run_get(user=stranger, run_id=run.pk)
    viewer = UserFactory()
    project = experiment.project
    from projects.services import membership_add

    membership_add(project=project, username=viewer.username, role=Role.VIEWER, actor=user)
    assert selectors.run_get(user=viewer, run_id=run.pk) == run


def test_search_filters_and_order(experiment, user):
    for i in range(5):
        run = services.run_create(experiment=experiment, user=user, name=f"run-{i}", start_time=1000 + i)
        services.run_log_batch(
            run=run,
            metrics=[("acc", i / 10, 0, 1)],
            params=[("solver", "lbfgs" if i % 2 else "sgd")],
            tags={"k": f"v{i}"},
        )
    page = selectors.run_search(
        user=user,
        experiment_ids=[str(experiment.pk)],
        filter_string="metrics.acc > 0.05 and params.solver = 'lbfgs'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.name for r in page.runs] == ["run-3", "run-1"]
    page = find(user, experiment, filter_string="tags.`k` IN ('v1', 'v4')", max_results=1)
    assert [r.name for r in page.runs] == ["run-4"] and page.next_page_token
    page2 = find(user, experiment, filter_string="tags.k IN ('v1','v4')", page_token=page.next_page_token)
    assert [r.name for r in page2.runs] == ["run-1"]
    like = find(user, experiment, filter_string="attributes.run_name LIKE 'run-%'")
    assert len(like.runs) == 5
    assert not find(user, experiment, filter_string="attributes.run_name LIKE 'RUN-%'").runs
    assert len(find(user, experiment, filter_string="run_name ILIKE 'RUN-%'").runs) == 5
    assert len(find(user, experiment, filter_string="tags.nope IS NULL").runs) == 5


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc >",
        "foo.bar = 1",
        "metrics.acc > 'x'",
        "params.a = 1 OR params.b = 2",
        "params.a == 'x' AND",
        "attributes.zzz = 'x'",
    ],
)
def test_malformed_filters_are_rejected(experiment, user, bad):
    with pytest.raises(ValidationFailed):
        find(user, experiment, filter_string=bad)


INJECTION = "params.x = \"1' OR '1'='1; DROP TABLE experiments_run; --\""


def test_sql_in_filter_matches_nothing(experiment, user):
    services.run_create(experiment=experiment, user=user)
    page = find(user, experiment, filter_string=INJECTION)
    assert page.runs == []
    assert len(selectors.run_search(user=user, experiment_ids=[str(experiment.pk)]).runs) == 1


@pytest.mark.parametrize("token", ["not-base64!!", "eyJ4IjogMX0=", "bnVsbA=="])
def test_bad_page_token(experiment, user, token):
    with pytest.raises(ValidationFailed, match="page token"):
        find(user, experiment, page_token=token)


@pytest.mark.parametrize("point", [("m", 1.0, 2**63, 1), ("m", 1.0, 0, -(2**63) - 1)])
def test_a_step_or_timestamp_past_64_bits_is_refused(experiment, user, point):
    run = services.run_create(experiment=experiment, user=user)
    with pytest.raises(ValidationFailed, match="64 bits"):
        services.run_log_batch(run=run, metrics=[("m", 0.5, 1, 1), point])
    assert not Metric.objects.filter(run=run).exists()


def test_metric_history_pages(experiment, user):
    # What every MLflow client asks (max_results, then page tokens), and a token alone.
    run = services.run_create(experiment=experiment, user=user)
    services.run_log_batch(run=run, metrics=[("h", float(i), 6 - i, 100 + i) for i in range(7)])
    services.run_log_batch(run=run, metrics=[("other", 1.0, 0, 1)])
    steps, token, pages = [], None, 0
    while True:
        points, token = selectors.metric_history(user=user, run_id=run.pk, key="h", max_results=3, page_token=token)
        steps += [p[3] for p in points]
        pages += 1
        if not token:
            break
    assert steps == list(range(7)) and pages == 3
    first, token = selectors.metric_history(user=user, run_id=run.pk, key="h", max_results=2)
    rest, none = selectors.metric_history(user=user, run_id=run.pk, key="h", page_token=token)
    assert [p[3] for p in first + rest] == list(range(7)) and none is None
    assert rest[0] == ("h", 4.0, False, 2, 104)
    with pytest.raises(ValidationFailed):
        selectors.metric_history(user=user, run_id=run.pk, key="h", page_token="not-a-token")


def test_a_repeated_search_sees_new_data_and_checks_the_caller_each_time(experiment, user, other_user):
    # A search's compiled SQL is kept between calls (selectors._run_search_statement):
    # the rows and the permission check must not be.
    query = {"filter_string": "metrics.acc > 0.5", "order_by": ["metrics.acc DESC"]}
    first = services.run_create(experiment=experiment, user=user, name="first")
    services.run_log_batch(run=first, metrics=[("acc", 0.6, 0, 1)])
    assert [r.name for r in find(user, experiment, **query).runs] == ["first"]
    second = services.run_create(experiment=experiment, user=user, name="second")
    services.run_log_batch(run=second, metrics=[("acc", 0.9, 0, 1)])
    services.run_log_batch(run=first, metrics=[("acc", 0.1, 1, 2)])  # no longer matches
    assert [r.name for r in find(user, experiment, **query).runs] == ["second"]
    with pytest.raises(NotFound):
        find(other_user, experiment, **query)


def test_experiment_name_maps_to_project(user, project):
    resolved, name = services.resolve_experiment_name(user=user, full_name=f"{project.slug}/deep/name")
    assert resolved == project and name == "deep/name"
    personal, plain = services.resolve_experiment_name(user=user, full_name="plain", create_personal=True)
    assert personal.is_personal and plain == "plain"
    stranger = UserFactory()
    with pytest.raises(NotFound):
        services.resolve_experiment_name(user=stranger, full_name=f"{project.slug}/x")


def test_latest_metric_keeps_the_highest_step_whatever_the_order(experiment, user):
    run = services.run_create(experiment=experiment, user=user)
    services.run_log_batch(run=run, metrics=[("m", 5.0, 5, 10)])
    services.run_log_batch(run=run, metrics=[("m", 3.0, 3, 20)])
    services.run_log_batch(run=run, metrics=[("m", 5.0, 5, 10)])  # the same point again is kept once
    latest = LatestMetric.objects.get(run=run, key="m")
    assert (latest.step, latest.value) == (5, 5.0)
    assert Metric.objects.filter(run=run, key="m").count() == 2
    services.run_log_batch(run=run, metrics=[("m", 7.0, 6, 5)])
    assert LatestMetric.objects.get(run=run, key="m").value == 7.0


@pytest.mark.django_db(transaction=True)
def test_a_batch_repeating_stored_points_keeps_each_once_outside_a_transaction(experiment, user):
    # Outside a transaction PostgreSQL takes a metrics-only batch as a plain INSERT and,
    # when the unique index refuses a repeated point, again with ON CONFLICT.
    run = services.run_create(experiment=experiment, user=user)
    services.run_log_batch(run=run, metrics=[("m", float(i), i, 10) for i in range(5)])
    services.run_log_batch(run=run, metrics=[("m", float(i), i, 10) for i in range(3, 8)])  # 3 and 4 again
    services.run_log_batch(run=run, metrics=[("m", 4.0, 4, 10)])  # nothing new at all
    assert sorted(Metric.objects.filter(run=run, key="m").values_list("step", flat=True)) == list(range(8))
    latest = LatestMetric.objects.get(run=run, key="m")
    assert (latest.step, latest.value) == (7, 7.0)


def test_run_changes_reach_live_pages_after_commit(experiment, user, django_capture_on_commit_callbacks):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    run = services.run_create(experiment=experiment, user=user)
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"experiment.{experiment.pk}", channel)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_update(run=run, status="FINISHED")
    message = async_to_sync(layer.receive)(channel)
    assert message["event"] == "run.updated" and message["payload"]["status"] == "FINISHED"
