"""The `mlp` command. Exit codes: 0 ok, 1 failed, 2 usage, 3 refused/forbidden,
4 not found, 5 timed out. Errors are one line on stderr (a traceback with --debug)."""

from collections.abc import Callable
import json
import os
import shlex
import sys
import traceback
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from mlp_client import __version__, config
from mlp_client.client import Client, parse_duration, payload_from_file
from mlp_client.data import diff_table, split_ref, split_stream
from mlp_client.errors import Failed, MlpError, TimedOut, UsageError
from mlp_client.tables import Record, Table

OUTPUTS = click.Choice(["table", "json", "csv"])
JOB_EXIT = {"succeeded": 0, "failed": 1, "cancelled": 1, "timed_out": 5}
_debug = [bool(os.environ.get("MLP_DEBUG"))]
err = Console(stderr=True)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _debug[0] = True


def common(func: Callable) -> Callable:
    """--output and --debug on every command (they may follow the arguments)."""
    func = click.option(
        "--debug", is_flag=True, expose_value=False, callback=_set_debug, help="Show tracebacks on errors."
    )(func)
    return click.option("--output", "-o", type=OUTPUTS, default="table", show_default=True, help="Output format.")(func)


class MlpGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlpError as exc:
            if _debug[0]:
                traceback.print_exc()
            err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # anything unexpected still ends in one line
            if _debug[0]:
                raise
            err.print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", markup=False)
            sys.exit(1)


class State:
    def __init__(self, profile: str | None, url: str | None, token: str | None) -> None:
        self.profile, self.url, self.token = profile, url, token
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(url=self.url, token=self.token, profile=self.profile)
        return self._client


pass_state = click.make_pass_decorator(State)


def emit(result: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(result.rows if isinstance(result, Table) else result, indent=2, default=str))
    elif output == "csv":
        if isinstance(result, Table | Record):
            click.echo(result.to_csv(), nl=False)
        else:
            click.echo(json.dumps(result, default=str))
    elif isinstance(result, Table | Record):
        Console(soft_wrap=False, width=max(Console().width, 160)).print(result.rich())
    else:
        click.echo(result)


def key_values(values: tuple[str, ...], what: str = "--param") -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{item}' is not KEY=VALUE.", param_hint=what)
        out[key.strip()] = value
    return out


def spinner(text: str) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn(text), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
    )


@click.group(cls=MlpGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--profile", envvar="MLP_PROFILE", help="Profile saved by `mlp login` (default: the default one).")
@click.option("--url", help="Platform URL (overrides MLP_URL and profiles).")
@click.option("--token", help="API token (prefer MLP_TOKEN: arguments show in process lists).")
@click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="mlp")
@click.pass_context
def cli(ctx: click.Context, profile: str | None, url: str | None, token: str | None) -> None:
    """The ML platform from the command line and CI/CD.

    \b
    Credentials, first found wins: --url/--token, --profile, MLP_URL + MLP_TOKEN,
    the default profile of `mlp login`, MLFLOW_TRACKING_URI + MLFLOW_TRACKING_TOKEN.
    Exit codes: 0 ok, 1 failed, 2 usage, 3 refused/forbidden, 4 not found, 5 timed out.

    \b
    Example:
      mlp login --url http://127.0.0.1:8000
      mlp jobs submit ./train --project churn --param lr=0.1 --wait
    """
    ctx.obj = State(profile, url, token)


# --- login ---------------------------------------------------------------------------


@cli.command()
@click.option("--url", prompt="Platform URL", help="e.g. http://127.0.0.1:8000")
@click.option("--token", prompt="API token", hide_input=True, help="A personal API token (Settings → API tokens).")
@click.option("--profile", default=config.DEFAULT_PROFILE, show_default=True, help="Name to save it under.")
@click.option("--default", "make_default", is_flag=True, help="Make this profile the default.")
@click.option("--no-verify", is_flag=True, help="Save without checking the token against the server.")
@common
def login(url: str, token: str, profile: str, make_default: bool, no_verify: bool, output: str) -> None:
    """Save a URL and token as a profile (in a 0600 file; see MLP_CONFIG).

    \b
    Example:
      mlp login --url https://mlp.example.com --profile prod --default
    """
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"'{url}' is not an http(s) URL.")
    user = ""
    if not no_verify:
        with Client(url=url, token=token, retries=0) as client:
            user = client.me()["username"]
    path = config.save_profile(profile, url=url, token=token, make_default=make_default)
    emit(Record({"profile": profile, "url": url.rstrip("/"), "user": user, "config": str(path)}), output)


@cli.command()
@common
@pass_state
def whoami(state: State, output: str) -> None:
    """Who the token belongs to, and where it points.

    \b
    Example:
      MLP_URL=http://127.0.0.1:8000 MLP_TOKEN=mlp_... mlp whoami
    """
    me = state.client().me()
    emit(Record({"url": state.client().url, **me}), output)


# --- projects and KPIs ------------------------------------------------------------------


@cli.group()
def projects() -> None:
    """Projects you are a member of."""


@projects.command("list")
@common
@pass_state
def projects_list(state: State, output: str) -> None:
    """List your projects.

    \b
    Example:
      mlp projects list --output json
    """
    emit(state.client().projects.list(), output)


@projects.command("show")
@click.argument("project")
@common
@pass_state
def projects_show(state: State, project: str, output: str) -> None:
    """Show a project and its KPIs.

    \b
    Example:
      mlp projects show churn
    """
    client = state.client()
    emit(client.projects.get(project), output)
    if output == "table":
        emit(client.projects.kpis(project), output)


@cli.group()
def kpis() -> None:
    """Project KPIs."""


@kpis.command("record")
@click.argument("project")
@click.argument("kpi")
@click.argument("value", type=float)
@click.option("--at", help="When it was measured (ISO 8601); default now.")
@common
@pass_state
def kpis_record(state: State, project: str, kpi: str, value: float, at: str | None, output: str) -> None:
    """Record a KPI value (KPI by name or id).

    \b
    Example:
      mlp kpis record churn "Retention" 0.87 --at 2026-01-31T00:00:00Z
    """
    emit(state.client().kpis.record(project, kpi, value, at=at), output)


# --- jobs ------------------------------------------------------------------------------


@cli.group()
def jobs() -> None:
    """Training jobs: submit, follow, cancel, rerun."""


def _bundle_progress() -> tuple[Progress, Callable[[str, int, int], None]]:
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(), console=err
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task("bundling" if phase == "bundle" else "uploading", total=total)
        progress.update(tasks[phase], completed=done, total=total)

    return progress, update


def _follow_and_wait(client: Client, job: dict, *, follow: bool, timeout: float | None, output: str) -> dict:
    log_out = err if output != "table" else Console()
    if follow:
        for line in client.jobs.log_lines(job["id"], follow=True):
            log_out.print(line, markup=False, highlight=False, soft_wrap=True)
        return client.jobs.wait(job["id"], timeout=timeout)
    with spinner(f"job {job['id']}") as progress:
        task = progress.add_task(job["status"])

        def polled(current: dict) -> None:
            share = f" {current['progress']:.0%}" if current.get("progress") is not None else ""
            progress.update(task, description=f"{current['status']}{share}")

        return client.jobs.wait(job["id"], timeout=timeout, on_poll=polled)


def _job_result(job: dict, output: str, waited: bool) -> None:
    row = {k: job.get(k) for k in ("id", "project", "status", "run_id", "exit_code", "message", "executor")}
    emit(job if output == "json" else Record(row), output)
    if waited and job["status"] != "succeeded":
        code = JOB_EXIT.get(job["status"], 1)
        error = TimedOut if code == 5 else Failed
        raise error(f"Job {job['id']} {job['status']}" + (f": {job['message']}" if job.get("message") else "."))


@jobs.command("submit")
@click.argument("path", type=click.Path(exists=True))
@click.option("--project", "-p", required=True, help="Project slug.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter (repeatable).")
@click.option("--command", "command", help='Command to run, e.g. "python train.py" (default: main.py).')
@click.option("--image", help="Container image (docker executor).")
@click.option("--executor", type=click.Choice(["local", "docker"]), default="local", show_default=True)
@click.option("--name", default="", help="Job name.")
@click.option("--experiment", default="", help="Experiment the job's run goes to (default: Default).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit with the job's status.")
@click.option("--follow", is_flag=True, help="Stream the log live (implies --wait).")
@click.option("--timeout", default=None, help="With --wait: give up after this long (e.g. 30m): exit 5.")
@common
@pass_state
def jobs_submit(state: State, path: str, project: str, params: tuple, command: str | None, image: str | None,
                executor: str, name: str, experiment: str, wait: bool, follow: bool, timeout: str | None,
                output: str) -> None:  # fmt: skip
    """Submit PATH (a .py file, or a directory bundled honouring .gitignore/.mlpignore).

    Each --param reaches the script as `--KEY VALUE` and is logged to the job's run.
    With --wait the exit code is the job's: 0 succeeded, 1 failed or cancelled, 5 timed out.

    \b
    Example:
      mlp jobs submit ./train --project churn --param lr=0.1 --command "python train.py" --wait
    """
    parsed = key_values(params)
    limit = parse_duration(timeout) if timeout else None
    client = state.client()
    progress, update = _bundle_progress()
    with progress:
        job = client.jobs.submit(
            path,
            project=project,
            params=parsed,
            command=shlex.split(command) if command else None,
            image=image,
            executor=executor,
            name=name,
            experiment=experiment,
            on_progress=update,
        )
    if output == "table":
        err.print(f"submitted job {job['id']} (run {job['run_id']})", highlight=False)
    if wait or follow:
        job = _follow_and_wait(client, job, follow=follow, timeout=limit, output=output)
    _job_result(job, output, wait or follow)


@jobs.command("list")
@click.option("--project", "-p", help="Only this project.")
@click.option("--status", help="queued, running, succeeded, failed, ...")
@common
@pass_state
def jobs_list(state: State, project: str | None, status: str | None, output: str) -> None:
    """List jobs.

    \b
    Example:
      mlp jobs list --project churn --status running
    """
    emit(state.client().jobs.list(project=project, status=status), output)


@jobs.command("status")
@click.argument("job_id", type=int)
@click.option("--wait", is_flag=True, help="Wait for the end; exit with the job's status.")
@click.option("--timeout", default=None, help="With --wait: give up after this long: exit 5.")
@common
@pass_state
def jobs_status(state: State, job_id: int, wait: bool, timeout: str | None, output: str) -> None:
    """Show a job (and wait for it with --wait).

    \b
    Example:
      mlp jobs status 42 --wait --timeout 1h
    """
    client = state.client()
    job = dict(client.jobs.get(job_id))
    if wait:
        job = _follow_and_wait(client, job, follow=False, timeout=parse_duration(timeout) if timeout else None,
                               output=output)  # fmt: skip
    _job_result(job, output, wait)


@jobs.command("logs")
@click.argument("job_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the job ends.")
@click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug, help="Show tracebacks on errors.")
@pass_state
def jobs_logs(state: State, job_id: int, follow: bool) -> None:
    """Print a job's log.

    \b
    Example:
      mlp jobs logs 42 --follow
    """
    for line in state.client().jobs.log_lines(job_id, follow=follow):
        click.echo(line)


@jobs.command("cancel")
@click.argument("job_id", type=int)
@common
@pass_state
def jobs_cancel(state: State, job_id: int, output: str) -> None:
    """Cancel a job.

    \b
    Example:
      mlp jobs cancel 42
    """
    job = state.client().jobs.cancel(job_id)
    emit(Record({k: job[k] for k in ("id", "status", "reason")}) if output != "json" else job, output)


@jobs.command("rerun")
@click.argument("job_id", type=int)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Change a parameter (repeatable).")
@click.option("--wait", is_flag=True, help="Wait for the end; exit with the job's status.")
@common
@pass_state
def jobs_rerun(state: State, job_id: int, params: tuple, wait: bool, output: str) -> None:
    """Run a job again (optionally with changed parameters).

    \b
    Example:
      mlp jobs rerun 42 --param lr=0.05 --wait
    """
    client = state.client()
    job = dict(client.jobs.rerun(job_id, params=key_values(params)))
    if wait:
        job = _follow_and_wait(client, job, follow=False, timeout=None, output=output)
    _job_result(job, output, wait)


@cli.group()
def sweeps() -> None:
    """Hyper-parameter sweeps (a job per combination)."""


@sweeps.command("submit")
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.option("--project", "-p", required=True)
@click.option("--name", required=True, help="Sweep name.")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...", required=True, help="Values to try.")
@click.option("--metric", required=True, help="Metric the children are ranked by.")
@click.option("--goal", type=click.Choice(["max", "min"]), default="max", show_default=True)
@click.option("--strategy", type=click.Choice(["grid", "random"]), default="grid", show_default=True)
@click.option("--trials", type=int, help="With --strategy random: how many.")
@click.option("--max-concurrency", type=int, default=2, show_default=True)
@common
@pass_state
def sweeps_submit(state: State, script: str, project: str, name: str, grid: tuple, metric: str, goal: str,
                  strategy: str, trials: int | None, max_concurrency: int, output: str) -> None:  # fmt: skip
    """Submit a sweep of SCRIPT over a grid of parameters.

    \b
    Example:
      mlp sweeps submit train.py -p churn --name lr-sweep --grid lr=0.1,0.01 --metric auc
    """
    space = {key: [v for v in values.split(",") if v != ""] for key, values in key_values(grid, "--grid").items()}
    sweep = state.client().sweeps.submit(
        script, project=project, name=name, space=space, metric=metric, goal=goal, strategy=strategy,
        trials=trials, max_concurrency=max_concurrency,
    )  # fmt: skip
    emit(sweep, output)


# --- runs ------------------------------------------------------------------------------


@cli.group()
def runs() -> None:
    """Search and compare runs."""


@runs.command("search")
@click.argument("experiment")
@click.option("--filter", "filter_", default="", help='MLflow filter, e.g. "metrics.auc > 0.8".')
@click.option("--order-by", default="", help='e.g. "metrics.auc DESC".')
@click.option("--column", "columns", multiple=True, help="metrics.KEY, params.KEY or tags.KEY (repeatable).")
@click.option("--max-results", type=int, default=100, show_default=True)
@click.option("--project", "-p", help="Project of EXPERIMENT when given by name alone.")
@common
@pass_state
def runs_search(state: State, experiment: str, filter_: str, order_by: str, columns: tuple, max_results: int,
                project: str | None, output: str) -> None:  # fmt: skip
    """Search the runs of EXPERIMENT (an id, PROJECT/NAME, or NAME with --project).

    \b
    Example:
      mlp runs search churn/Default --filter "metrics.auc > 0.8" --order-by "metrics.auc DESC" -o json
    """
    table = state.client().runs.search(
        experiment, filter=filter_, order_by=order_by, columns=list(columns), max_results=max_results,
        project=project,
    )  # fmt: skip
    emit(table.rows if output == "json" else table, output)


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@common
@pass_state
def runs_compare(state: State, run_ids: tuple, output: str) -> None:
    """Compare the params and metrics of two or more runs.

    \b
    Example:
      mlp runs compare 3f2a... 9bc1... --output csv
    """
    table = state.client().runs.compare(list(run_ids))
    emit(table.rows if output == "json" else table, output)


# --- models ----------------------------------------------------------------------------


@cli.group()
def models() -> None:
    """The model registry."""


@models.command("register")
@click.argument("source")
@click.argument("name")
@common
@pass_state
def models_register(state: State, source: str, name: str, output: str) -> None:
    """Register SOURCE (RUN_ID/PATH, the model's folder in the run) as a new version of NAME (PROJECT/MODEL).

    \b
    Example:
      mlp models register 3f2a9c.../model churn/churn-model
    """
    emit(state.client().models.register(source, name), output)


@models.command("alias")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("alias")
@common
@pass_state
def models_alias(state: State, name: str, version: int, alias: str, output: str) -> None:
    """Point ALIAS of model NAME (PROJECT/MODEL) at VERSION.

    \b
    Example:
      mlp models alias churn/churn-model 3 champion
    """
    emit(state.client().models.alias(name, version, alias), output)


@models.command("list")
@click.option("--project", "-p", help="Only this project.")
@common
@pass_state
def models_list(state: State, project: str | None, output: str) -> None:
    """List registered models.

    \b
    Example:
      mlp models list --project churn
    """
    emit(state.client().models.list(project=project), output)


# --- deployments -----------------------------------------------------------------------


@cli.command()
@click.argument("endpoint")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--canary", type=float, metavar="PERCENT", help="Deploy as a canary taking PERCENT of the traffic.")
@click.option("--shadow", is_flag=True, help="Deploy as a shadow (gets a copy of the traffic, answers nobody).")
@click.option("--trusted", is_flag=True, help="Allow a pickle-based flavor (project owners only).")
@common
@pass_state
def deploy(state: State, endpoint: str, model: str, version: int, canary: float | None, shadow: bool, trusted: bool,
           output: str) -> None:  # fmt: skip
    """Deploy MODEL (PROJECT/MODEL) VERSION to ENDPOINT: as champion, --canary or --shadow.

    Refused (exit 3) unless the project's production gate has passed.

    \b
    Example:
      mlp deploy churn-api churn/churn-model 4 --canary 10
    """
    emit(state.client().endpoints.deploy(endpoint, model, version, canary=canary, shadow=shadow, trusted=trusted),
         output)  # fmt: skip


@cli.group()
def endpoints() -> None:
    """Model endpoints: status, promote, rollback."""


@endpoints.command("list")
@common
@pass_state
def endpoints_list(state: State, output: str) -> None:
    """List endpoints.

    \b
    Example:
      mlp endpoints list -o json
    """
    emit(state.client().endpoints.list(), output)


@endpoints.command("status")
@click.argument("endpoint")
@common
@pass_state
def endpoints_status(state: State, endpoint: str, output: str) -> None:
    """Champion, challenger and traffic of ENDPOINT.

    \b
    Example:
      mlp endpoints status churn-api
    """
    emit(state.client().endpoints.status(endpoint), output)


@endpoints.command("promote")
@click.argument("endpoint")
@click.option("--reason", default="", help="Recorded in the endpoint's history.")
@common
@pass_state
def endpoints_promote(state: State, endpoint: str, reason: str, output: str) -> None:
    """Make the challenger the champion.

    \b
    Example:
      mlp endpoints promote churn-api --reason "canary beat champion on AUC"
    """
    emit(state.client().endpoints.promote(endpoint, reason=reason), output)


@endpoints.command("rollback")
@click.argument("endpoint")
@click.option("--reason", default="")
@click.option(
    "--champion", is_flag=True, help="Roll the champion back to the previous one (default: drop the challenger)."
)
@common
@pass_state
def endpoints_rollback(state: State, endpoint: str, reason: str, champion: bool, output: str) -> None:
    """Drop the challenger (or, with --champion, restore the previous champion).

    \b
    Example:
      mlp endpoints rollback churn-api --reason "latency"
    """
    target = "champion" if champion else "challenger"
    emit(state.client().endpoints.rollback(endpoint, reason=reason, target=target), output)


@cli.command()
@click.argument("endpoint")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--endpoint-token", envvar="MLP_ENDPOINT_TOKEN", help="The endpoint's token (not needed if public).")
@common
@pass_state
def predict(state: State, endpoint: str, file: str, endpoint_token: str | None, output: str) -> None:
    """Score FILE (.csv, or .json in an MLflow scoring shape) on ENDPOINT.

    \b
    Example:
      mlp predict churn-api customers.csv --endpoint-token mlpe_...
    """
    result = state.client().endpoints.predict(endpoint, payload_from_file(file), token=endpoint_token)
    predictions = result.get("predictions", result) if isinstance(result, dict) else result
    if output == "table" and isinstance(predictions, list):
        emit(Table([p if isinstance(p, dict) else {"prediction": p} for p in predictions]), output)
    else:
        emit(result, "json" if output == "table" else output)


# --- gates -----------------------------------------------------------------------------


@cli.group()
def gates() -> None:
    """Decision gates: request a review, vote, decide, wait for the decision."""


@gates.command("status")
@click.argument("project")
@click.argument("stage", required=False)
@common
@pass_state
def gates_status(state: State, project: str, stage: str | None, output: str) -> None:
    """The project's gates (or the one into STAGE).

    \b
    Example:
      mlp gates status churn Production
    """
    client = state.client()
    emit(client.gates.status(project, stage) if stage else client.gates.list(project), output)


@gates.command("request")
@click.argument("project")
@click.argument("stage")
@click.option("--evidence", multiple=True, metavar="KIND:REF", help="e.g. run:3f2a..., model_version:churn/m/4.")
@common
@pass_state
def gates_request(state: State, project: str, stage: str, evidence: tuple, output: str) -> None:
    """Open the review of the gate into STAGE (its approvers then vote).

    \b
    Example:
      mlp gates request churn Production --evidence run:3f2a9c...
    """
    pairs = []
    for item in evidence:
        kind, sep, ref = item.partition(":")
        if not sep or not kind or not ref:
            raise click.BadParameter(f"'{item}' is not KIND:REF.", param_hint="--evidence")
        pairs.append((kind, ref))
    emit(state.client().gates.request(project, stage, evidence=pairs), output)


@gates.command("vote")
@click.argument("project")
@click.argument("stage")
@click.argument("verdict", type=click.Choice(["go", "no_go", "hold"]))
@click.option("--comment", default="")
@common
@pass_state
def gates_vote(state: State, project: str, stage: str, verdict: str, comment: str, output: str) -> None:
    """Vote on the gate into STAGE (approvers only).

    \b
    Example:
      mlp gates vote churn Production go --comment "AUC +2 points"
    """
    emit(state.client().gates.vote(project, stage, verdict, comment=comment), output)


@gates.command("decide")
@click.argument("project")
@click.argument("stage")
@click.argument("verdict", type=click.Choice(["go", "no_go", "hold"]))
@click.option("--rationale", default="")
@common
@pass_state
def gates_decide(state: State, project: str, stage: str, verdict: str, rationale: str, output: str) -> None:
    """Decide the gate into STAGE (project owners only; final).

    \b
    Example:
      mlp gates decide churn Production go --rationale "quorum reached"
    """
    emit(state.client().gates.decide(project, stage, verdict, rationale=rationale), output)


@gates.command("wait")
@click.argument("project")
@click.argument("stage")
@click.option("--timeout", default="1h", show_default=True, help="Give up after this long: exit 5.")
@click.option("--interval", default="5s", show_default=True, help="How often to ask.")
@common
@pass_state
def gates_wait(state: State, project: str, stage: str, timeout: str, interval: str, output: str) -> None:
    """Wait for the decision on the gate into STAGE: exit 0 on Go, 3 on No-go/Hold, 5 on timeout.

    \b
    Example:
      mlp gates wait churn Production --timeout 1h
    """
    limit, every = parse_duration(timeout), parse_duration(interval)
    with spinner(f"waiting for the {stage} gate of {project}") as progress:
        task = progress.add_task("")

        def polled(gate: dict) -> None:
            progress.update(task, description=f"({gate['status']}, {len(gate.get('votes') or [])} vote(s))")

        gate = state.client().gates.wait(project, stage, timeout=limit, interval=every, on_poll=polled)
    emit(gate, output)


# --- data: streams and datasets ---------------------------------------------------------


def _transfer_progress(description: str, total: int | None) -> tuple[Progress, Callable[..., None]]:
    progress = Progress(
        TextColumn(description), BarColumn(), DownloadColumn(), TimeElapsedColumn(), console=err, transient=False
    )
    task = progress.add_task(description, total=total)

    def update(done: int, total: int | None = None) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


@cli.group()
def data() -> None:
    """Streams: push records to one, list and show them."""


@data.command("push")
@click.argument("stream", metavar="PROJECT/STREAM")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--token", "--ingest-token", "ingest_token", envvar="MLP_INGEST_TOKEN", metavar="mlpi_...",
              help="The stream's ingest token (default: MLP_INGEST_TOKEN).")  # fmt: skip
@click.option("--batch", type=int, default=500, show_default=True, help="Records per request.")
@click.option("--allow-quarantine", is_flag=True, help="Exit 0 even if records were quarantined.")
@common
@pass_state
def data_push(state: State, stream: str, file: str, ingest_token: str | None, batch: int, allow_quarantine: bool,
              output: str) -> None:  # fmt: skip
    """Send the records of FILE (.json: an object or an array; .jsonl; .csv with a header)
    to a stream's HTTP ingest, in batches.

    The whole file is checked first: a malformed one sends nothing (exit 2, with its line).
    Prints how many records were accepted, were duplicates (already there: pushing again
    is safe) and were quarantined (they do not fit the stream's schema; see the stream's
    Data page to release them). Exit 1 if any was quarantined, unless --allow-quarantine;
    3 for a wrong ingest token or a paused stream; 4 for an unknown stream.

    \b
    Example:
      MLP_INGEST_TOKEN=mlpi_... mlp data push churn/events events.jsonl --batch 1000
    """
    client = state.client()
    progress = Progress(
        TextColumn("pushing"), BarColumn(), MofNCompleteColumn(), TextColumn("records"), TimeElapsedColumn(),
        console=err,
    )  # fmt: skip
    task = progress.add_task("push", total=None)

    def update(done: int, total: int) -> None:
        if not progress.live.is_started:  # only once the whole file has been checked
            progress.start()
        progress.update(task, completed=done, total=total)

    try:
        result = client.data.push(stream, file, token=ingest_token, batch_size=batch, on_progress=update)
    finally:
        progress.stop()
    if output == "table":
        emit(Record({k: v for k, v in result.items() if k != "reasons"}), output)
        if result["reasons"]:
            emit(Table(result["reasons"], ["record", "reason"], title="Quarantined (first ones)"), output)
    else:
        emit(result if output == "json" else Record({k: v for k, v in result.items() if k != "reasons"}), output)
    if result["quarantined"] and not allow_quarantine:
        first = result["reasons"][0]
        raise Failed(
            f"{result['quarantined']} record(s) of {file} were quarantined by {stream} (first: record "
            f"{first['record']}: {first['reason']}). Fix them and push again, or release them on the stream's page."
        )


@data.group("streams")
def data_streams() -> None:
    """A project's streams."""


@data_streams.command("list")
@click.argument("project")
@common
@pass_state
def data_streams_list(state: State, project: str, output: str) -> None:
    """List the streams of PROJECT.

    \b
    Example:
      mlp data streams list churn -o json
    """
    emit(state.client().data.streams(project), output)


@data_streams.command("show")
@click.argument("stream", metavar="PROJECT/STREAM")
@common
@pass_state
def data_streams_show(state: State, stream: str, output: str) -> None:
    """Show a stream: its schema, counters and ingest URL.

    \b
    Example:
      mlp data streams show churn/events
    """
    emit(state.client().data.stream(*split_stream(stream)), output)


@cli.group()
def datasets() -> None:
    """Dataset versions: create (upload or stream window), list, pull, diff."""


@datasets.command("create")
@click.argument("project")
@click.argument("name")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--stream", help="Make the version from a window of this stream (instead of FILE).")
@click.option("--since-last", is_flag=True, help="With --stream: from where the dataset's last version ended.")
@click.option("--start", help="With --stream: window start, ISO 8601 (ingest time, inclusive).")
@click.option("--end", help="With --stream: window end, ISO 8601 (exclusive).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet", "jsonl"]), help="FILE's format (default: by its name)."
)
@click.option("--description", default="")
@common
@pass_state
def datasets_create(state: State, project: str, name: str, file: str | None, stream: str | None,
                    since_last: bool, start: str | None, end: str | None, fmt: str | None, description: str,
                    output: str) -> None:  # fmt: skip
    """Create a version of dataset NAME from FILE (CSV, Parquet or JSON Lines, uploaded)
    or from a window of a stream. The same data gives the same version (created: false).

    \b
    Example:
      mlp datasets create churn customers customers.csv
      mlp datasets create churn events --stream clicks --since-last
    """
    client = state.client()
    if file is None:
        version = client.datasets.create(project, name, stream=stream, since_last=since_last, start=start, end=end,
                                         description=description)  # fmt: skip
    else:
        if stream or since_last or start or end:
            raise UsageError("Give either a FILE to upload or --stream with its window, not both.")
        progress, update = _transfer_progress("uploading", None)
        with progress:
            version = client.datasets.create(project, name, file, format=fmt, description=description,
                                             on_progress=update)  # fmt: skip
    if output == "table":
        keys = ["id", "uri", "created", "rows", "bytes", "source", "status", "profile_status", "created_at"]
        emit(Record({k: version.get(k) for k in keys}), output)
    else:
        emit(version, output)


@datasets.command("list")
@click.argument("project")
@common
@pass_state
def datasets_list(state: State, project: str, output: str) -> None:
    """List the datasets of PROJECT.

    \b
    Example:
      mlp datasets list churn
    """
    emit(state.client().datasets.list(project), output)


@datasets.command("versions")
@click.argument("project")
@click.argument("name")
@common
@pass_state
def datasets_versions(state: State, project: str, name: str, output: str) -> None:
    """List the versions of dataset NAME, newest first.

    \b
    Example:
      mlp datasets versions churn customers -o json
    """
    emit(state.client().datasets.versions(project, name), output)


@datasets.command("show")
@click.argument("project")
@click.argument("name", metavar="NAME[@REF]")
@common
@pass_state
def datasets_show(state: State, project: str, name: str, output: str) -> None:
    """Show a version (REF: an id, an 8+ digit prefix, an alias; default latest).

    \b
    Example:
      mlp datasets show churn customers@prod
    """
    version = state.client().datasets.get(project, *split_ref(name))
    brief = Record({k: v for k, v in version.items() if k not in ("manifest", "profile")})
    emit(version if output == "json" else brief, output)


@datasets.command("pull")
@click.argument("project")
@click.argument("name", metavar="NAME[@REF]")
@click.option("--out", "-O", "path", type=click.Path(), help="File (or directory) to write; default NAME-ID.FORMAT.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@common
@pass_state
def datasets_pull(state: State, project: str, name: str, path: str | None, fmt: str, output: str) -> None:
    """Download a version's data, streamed (REF: an id, a prefix, an alias; default latest).

    \b
    Example:
      mlp datasets pull churn customers@prod --format csv --out customers.csv
    """
    progress, update = _transfer_progress("downloading", None)
    with progress:
        result = state.client().datasets.pull(project, *split_ref(name), path=path, format=fmt, on_progress=update)
    emit(result, output)


@datasets.command("diff")
@click.argument("project")
@click.argument("name")
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--timeout", default="2m", show_default=True, help="How long to wait for REF_A's profile: exit 5.")
@common
@pass_state
def datasets_diff(state: State, project: str, name: str, ref_a: str, ref_b: str, timeout: str, output: str) -> None:
    """Compare version REF_B of dataset NAME against REF_A: schema changes, row counts and
    per-column distribution shift (PSI for numbers, Jensen-Shannon for categories).

    \b
    Example:
      mlp datasets diff churn customers prod latest -o json
    """
    limit = parse_duration(timeout)
    with spinner(f"comparing {name}") as progress:
        progress.add_task("")
        result = state.client().datasets.diff(project, name, ref_a, ref_b, timeout=limit)
    if output == "json":
        emit(result, output)
        return
    schema = result["schema"]
    summary = {
        "base": result["base"], "other": result["other"],
        "rows": f"{result['rows']['base']} → {result['rows']['other']} ({result['rows']['change']:+})",
        "added": ", ".join(schema["added"]), "removed": ", ".join(schema["removed"]),
        "changed": ", ".join(f"{c['name']}: {c['base']} → {c['other']}" for c in schema["changed"]),
        "drifted": ", ".join(result["drifted"]),
    }  # fmt: skip
    emit(Record(summary), output)
    if output == "table":
        emit(diff_table(result), output)


def main() -> None:
    cli(prog_name="mlp")


if __name__ == "__main__":
    main()
