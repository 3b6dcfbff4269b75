"""Reads behind the registry pages and /api/v1/ registry endpoints: models with their
version counts, a model's versions, and a version's provenance (version -> run ->
datasets -> code). Each is a fixed number of queries, filtered by what the user sees."""

from dataclasses import dataclass

from django.db.models import Count, Max, Prefetch, QuerySet

from experiments.models import DatasetInput, LatestMetric, Run
from experiments.selectors import check_role
from mlplatform.errors import NotFound
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_check, project_visible_ids
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from registry.search import mlflow_name, model_version_filter, registered_model_filter
from registry.selectors import version_queryset


def _with_stats(qs: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
    return (
        qs.select_related("project")
        .prefetch_related(
            "tags", Prefetch("aliases", queryset=ModelAlias.objects.select_related("model_version").order_by("alias"))
        )
        .annotate(version_count=Count("versions", distinct=True), latest_version=Max("versions__version"))
    )


def model_overview(
    *, user: User, project: Project | None = None, filter_string: str | None = None
) -> QuerySet[RegisteredModel]:
    """Registered models of one project, or of every project the user sees, matching
    an MLflow registry filter (`name LIKE 'churn%' AND tags.team = 'growth'`) whose
    `name` is the plain name (the project is shown apart)."""
    if project is not None:
        check_role(user=user, project=project, min_role=Role.VIEWER)
        qs = RegisteredModel.objects.filter(project=project)
    else:
        qs = RegisteredModel.objects.filter(project__in=project_visible_ids(user=user))
    if filter_string:
        names = mlflow_name(plain=True)
        qs = qs.annotate(mlflow_name=names, mlflow_full_name=names).filter(registered_model_filter(filter_string))
    return _with_stats(qs).order_by("-last_updated_timestamp", "name")


def model_get(*, user: User, project_slug: str, name: str, min_role: str = Role.VIEWER) -> RegisteredModel:
    """The model `name` in project `project_slug`; NotFound for a project the user does
    not see, so a name never reveals another project's model."""
    project = Project.objects.filter(slug=project_slug).first()
    try:
        project = project_check(user=user, project=project, min_role=min_role)
    except NotFound:
        raise NotFound(f"Registered Model with name={name} not found")
    model = _with_stats(RegisteredModel.objects.filter(project=project, name=name)).first()
    if model is None:
        raise NotFound(f"Registered Model with name={name} not found")
    return model


def version_list(*, model: RegisteredModel, filter_string: str | None = None) -> list[ModelVersion]:
    """The caller got `model` through model_get (access checked). `filter_string` is
    MLflow's model-version filter (`version_number > 3 AND tags.validated = 'yes'`)."""
    qs = version_queryset().filter(registered_model=model)
    if filter_string:
        names = mlflow_name(prefix="registered_model__", plain=True)
        qs = qs.annotate(mlflow_name=names, mlflow_full_name=names).filter(model_version_filter(filter_string))
    return list(qs.order_by("-version"))


def version_get(*, model: RegisteredModel, version: int) -> ModelVersion:
    mv = version_queryset().filter(registered_model=model, version=version).first()
    if mv is None:
        raise NotFound(f"Model Version (name={model.name}, version={version}) not found")
    return mv


@dataclass
class Provenance:
    version: ModelVersion
    run: Run | None
    metrics: list[LatestMetric]
    datasets: list[DatasetInput]
    code: dict[str, str]


def version_provenance(*, model: RegisteredModel, version: int) -> Provenance:
    """What the version was trained from. Params, code tags and dataset digests are the
    ones frozen at registration; the run's current datasets are linked when they match."""
    mv = version_get(model=model, version=version)
    run = mv.run
    metrics, datasets = [], []
    if run is not None:
        metrics = list(LatestMetric.objects.filter(run=run).order_by("key"))
        datasets = list(DatasetInput.objects.filter(run=run).select_related("dataset").order_by("pk"))
    code = dict(mv.source_tags or {})
    if mv.code_version:
        code.setdefault("mlflow.source.git.commit", mv.code_version)
    return Provenance(version=mv, run=run, metrics=metrics, datasets=datasets, code=code)
