"""Where a model version's files may come from: only our own artifact store, and only
the same project. `file:///etc/passwd`, `/root/.ssh`, `../..`, `http://…`, another
project's run or logged model: all refused, so registering a version can never make
the server read (or later serve) a file it should not."""

from dataclasses import dataclass
import re

from experiments.artifacts import clean_relative_path
from experiments.models import LoggedModel, Run
from mlplatform.errors import ValidationFailed
from projects.models import Project

_MODELS_RE = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]{32})/?$")
_RUNS_RE = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})(?:/(?P<path>.*))?$")
_PROXY_RUN_RE = re.compile(r"^mlflow-artifacts:/(?P<exp>\d+)/(?P<run_id>[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?$")
_PROXY_MODEL_RE = re.compile(r"^mlflow-artifacts:/(?P<exp>\d+)/models/(?P<model_id>m-[0-9a-f]{32})/artifacts/?$")


@dataclass
class ResolvedSource:
    run: Run | None
    logged_model: LoggedModel | None
    path: str  # inside the run's artifact root; '' for a logged model


def _refuse(source: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid model version source '{source[:200]}': it must be an artifact of a run or logged model "
        "in this project (models:/m-…, runs:/<run_id>/<path> or mlflow-artifacts:/…)."
    )


def resolve_source(*, source: str, project: Project) -> ResolvedSource:
    source = (source or "").strip()
    if "\x00" in source or "\\" in source:
        raise _refuse(source)
    if m := _MODELS_RE.match(source):
        return ResolvedSource(None, _model(m["model_id"], project, source), "")
    if m := _PROXY_MODEL_RE.match(source):
        model = _model(m["model_id"], project, source)
        if str(model.experiment_id) != m["exp"]:
            raise _refuse(source)
        return ResolvedSource(None, model, "")
    if m := _RUNS_RE.match(source):
        return ResolvedSource(_run(m["run_id"], project, source), None, _path(m["path"], source))
    if m := _PROXY_RUN_RE.match(source):
        run = _run(m["run_id"], project, source)
        if str(run.experiment_id) != m["exp"]:
            raise _refuse(source)
        return ResolvedSource(run, None, _path(m["path"], source))
    raise _refuse(source)


def _path(path: str | None, source: str) -> str:
    try:
        return clean_relative_path(path or "")
    except ValidationFailed:
        raise _refuse(source)


def _run(run_id: str, project: Project, source: str) -> Run:
    run = Run.objects.select_related("experiment").filter(pk=run_id, experiment__project=project).first()
    if run is None:
        raise _refuse(source)
    return run


def _model(model_id: str, project: Project, source: str) -> LoggedModel:
    model = (
        LoggedModel.objects.select_related("experiment", "source_run")
        .filter(pk=model_id, experiment__project=project)
        .first()
    )
    if model is None:
        raise _refuse(source)
    return model
