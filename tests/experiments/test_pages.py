"""Experiment pages: lists, runs table, run detail, artifact previews, compare, and a
constant number of queries however many runs a page shows."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
import pytest

from experiments import services
from tests.experiments.tracking_data import make_experiment, put_artifact
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db
XSS = "<script>alert('x')</script>"


@pytest.fixture
def browser_client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def data(project, user):
    return make_experiment(project, user, n_runs=5, with_children=True)


def test_empty_experiments_page_says_how_to_log(browser_client, project):
    html = browser_client.get("/experiments/").content.decode()
    assert "No experiments yet" in html
    assert "MLFLOW_TRACKING_URI=http://testserver" in html and "MLFLOW_TRACKING_TOKEN" in html
    assert f'set_experiment("{project.slug}/my-experiment")' in html


def test_experiment_lists(browser_client, data, project):
    experiment, _ = data
    for url in ["/experiments/", f"/projects/{project.slug}/experiments/"]:
        html = browser_client.get(url).content.decode()
        assert f'href="/experiments/{experiment.pk}/"' in html and ">6<" in html


def test_runs_table_columns_sort_filter_and_pages(browser_client, data):
    experiment, _ = data
    url = f"/experiments/{experiment.pk}/"
    response = browser_client.get(
        url,
        {"filter": "params.model = 'lr'", "order_by": "metrics.`acc` DESC", "columns": ["metrics.acc", "params.lr"]},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index(">run-4<") < html.index(">run-2<") < html.index(">run-0<")
    assert ">run-1<" not in html
    assert "metrics.`acc` ASC" in response.context["columns"][0]["sort"]["url"].replace("%60", "`").replace("+", " ")
    assert "runs.csv?filter=" in response.context["csv_url"]
    paged = browser_client.get(url, {"page_size": 25})
    assert paged.context["table"].total == 6 and paged.context["next_url"] is None


def test_deleted_runs_view_and_a_page_past_the_end(browser_client, data, user):
    experiment, runs = data
    services.run_delete(run=runs[0], user=user)
    url = f"/experiments/{experiment.pk}/"
    deleted = browser_client.get(url, {"view": "DELETED_ONLY"})
    assert [r.pk for r in deleted.context["table"].runs] == [runs[0].pk]
    assert "view=DELETED_ONLY" in deleted.context["csv_url"]
    assert browser_client.get(url, {"view": "ALL"}).context["table"].total == 6
    past = browser_client.get(url, {"page": 99, "page_size": 25})
    assert past.context["table"].page == 1 and len(past.context["table"].runs) == 5


def test_filter_error_is_a_message_not_a_500(browser_client, data):
    experiment, _ = data
    response = browser_client.get(f"/experiments/{experiment.pk}/", {"filter": "metrics.acc >>> 'x"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="filter-error"' in html and "Invalid filter" in html
    assert 'value="metrics.acc &gt;&gt;&gt; &#x27;x"' in html  # what they typed, escaped


def test_csv_download_from_the_page(browser_client, data):
    experiment, _ = data
    response = browser_client.get(
        f"/experiments/{experiment.pk}/runs.csv", {"filter": "params.model = 'rf'", "columns": "params.lr"}
    )
    lines = response.content.decode().splitlines()
    assert lines[0].endswith("parent_run_id,params.lr") and len(lines) == 3


def test_run_detail_shows_params_tags_charts_datasets_and_children(browser_client, data):
    _, runs = data
    services.run_log_inputs(
        run=runs[0],
        datasets=[
            {"dataset": {"name": "pumps", "digest": "abc123", "source_type": "local", "source": "x"}, "tags": []}
        ],
    )
    html = browser_client.get(f"/runs/{runs[0].pk}/").content.decode()
    assert "lr" in html and "blue" in html and "pumps" in html and "abc123" in html
    assert 'id="chart-0-data"' in html and "plotly.min.js" in html
    assert f'href="/runs/{runs[-1].pk}/"' in html  # the child run


def test_user_text_is_escaped(browser_client, project, user):
    experiment = services.experiment_get_or_create(project=project, name=XSS, user=user)
    run = services.run_create(experiment=experiment, user=user, name=XSS, tags={"t": XSS})
    services.run_log_batch(run=run, params={"p": XSS}, metrics=[("m", 1.0, 0, 1)])
    other = services.run_create(experiment=experiment, user=user, name="other")
    put_artifact(run, "x<img src=x onerror=alert(1)>.txt", b"<script>alert(1)</script>")
    for url in [
        f"/runs/{run.pk}/",
        f"/runs/{run.pk}/?file=x<img src=x onerror=alert(1)>.txt",
        f"/experiments/{experiment.pk}/?columns=params.p&columns=params.{XSS}",
        f"/experiments/compare/?runs={run.pk}&runs={other.pk}",
        "/experiments/",
    ]:
        html = browser_client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, url


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("notes.txt", b"hello notes", "hello notes"),
        ("cfg/config.json", b'{"a": {"b": 1}}', "&quot;b&quot;: 1"),
        ("table.csv", b"col1,col2\n1,2\n3,4\n", "<th>col2</th>"),
        ("plot.png", b"\x89PNG\r\n", 'class="preview-img"'),
    ],
)
def test_artifact_previews(browser_client, data, name, content, expected):
    _, runs = data
    put_artifact(runs[0], name, content)
    html = browser_client.get(f"/runs/{runs[0].pk}/", {"file": name}).content.decode()
    assert expected in html


def test_artifact_browser_bad_path_is_a_message(browser_client, data):
    _, runs = data
    response = browser_client.get(f"/runs/{runs[0].pk}/", {"path": "../../etc", "file": "../../etc/passwd"})
    assert response.status_code == 200 and "is not allowed" in response.content.decode()
    assert browser_client.get(f"/runs/{runs[0].pk}/artifact", {"path": "../../etc/passwd"}).status_code == 404


def test_artifact_download_is_an_attachment_except_images(browser_client, data):
    _, runs = data
    put_artifact(runs[0], "page.html", b"<script>alert(1)</script>")
    put_artifact(runs[0], "plot.png", b"\x89PNG\r\n")
    html_file = browser_client.get(f"/runs/{runs[0].pk}/artifact", {"path": "page.html", "inline": "1"})
    assert html_file["Content-Type"] == "application/octet-stream" and "attachment" in html_file["Content-Disposition"]
    image = browser_client.get(f"/runs/{runs[0].pk}/artifact", {"path": "plot.png", "inline": "1"})
    assert image["Content-Type"] == "image/png" and "sandbox" in image["Content-Security-Policy"]


def test_compare_page(browser_client, data):
    _, runs = data
    response = browser_client.get("/experiments/compare/", {"runs": [runs[1].pk, runs[2].pk, runs[3].pk]})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="parallel-data"' in html and 'id="overlay-data"' in html and 'id="scatter-data"' in html
    assert "params.lr" in html and "metrics.acc" in html
    scatter = browser_client.get(
        "/experiments/compare/", {"runs": f"{runs[1].pk},{runs[2].pk}", "x": "params.lr", "y": "metrics.loss"}
    )
    assert scatter.context["x"] == "params.lr" and scatter.context["y"] == "metrics.loss"


def test_compare_with_too_few_runs_says_what_to_do(browser_client, data):
    _, runs = data
    html = browser_client.get("/experiments/compare/", {"runs": runs[0].pk}).content.decode()
    assert "between 2 and 100" in html and "Compare selected" in html


def test_another_projects_pages_are_404(data):
    experiment, runs = data
    stranger = UserFactory()
    make_project(owner=stranger)
    client = Client()
    client.force_login(stranger)
    for url in [
        f"/experiments/{experiment.pk}/",
        f"/experiments/{experiment.pk}/runs.csv",
        f"/runs/{runs[0].pk}/",
        f"/runs/{runs[0].pk}/artifact?path=x",
        f"/experiments/compare/?runs={runs[0].pk}&runs={runs[1].pk}",
        f"/projects/{experiment.project.slug}/experiments/",
    ]:
        assert client.get(url).status_code == 404, url


def count_queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_runs_table_and_compare_queries_do_not_grow_with_runs(browser_client, project, user):
    """Given experiments of 10 and 200 runs, the runs table (all on one page) and the
    compare view run the same number of queries for both."""
    small, small_runs = make_experiment(project, user, name="small", n_runs=10, with_children=True)
    big, big_runs = make_experiment(project, user, name="big", n_runs=200, with_children=True)
    columns = ["metrics.acc", "metrics.loss", "params.lr", "params.model", "tags.team"]
    params = {"page_size": 1000, "columns": columns, "order_by": "metrics.acc DESC", "filter": "metrics.acc >= 0"}
    counts = [count_queries(browser_client, f"/experiments/{e.pk}/", params) for e in (small, big)]
    assert counts[0] == counts[1]
    csv_counts = [count_queries(browser_client, f"/experiments/{e.pk}/runs.csv", params) for e in (small, big)]
    assert csv_counts[0] == csv_counts[1]
    compare = [
        count_queries(browser_client, "/experiments/compare/", {"runs": [r.pk for r in runs[:100]]})
        for runs in (small_runs[:5], big_runs)
    ]
    assert compare[0] == compare[1]


def test_parallel_coordinates_escape_axis_labels_once_and_tick_text_not_at_all():
    # Plotly reads axis labels as its pseudo-HTML (so they are escaped) but draws a
    # parcoords tick text as plain text, where an escaped "<" would show as "&lt;".
    from frontend.views.tracking_charts import _dimension

    dim = _dimension("params.<opt>", ["a<b", "c&d", None])
    assert dim["label"] == "params.&lt;opt&gt;"
    assert dim["ticktext"] == ["", "a<b", "c&d"]
