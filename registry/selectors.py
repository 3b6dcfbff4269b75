"""Reads of the registry, filtered by what the user may see. Names map to projects as
experiment names do (`<project-slug>/<name>` or the caller's default project)."""

from dataclasses import dataclass
from pathlib import Path

from django.db.models import F, Prefetch, QuerySet, Window
from django.db.models.functions import RowNumber

from experiments import search
from experiments.artifacts import model_local_dir, run_local_dir
from experiments.selectors import check_role
from experiments.services.experiments import resolve_experiment_name
from mlplatform.errors import NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_visible_ids
from registry import search as registry_search
from registry.models import ModelAlias, ModelVersion, RegisteredModel


def resolve_model_name(
    *, user: User, full_name: str, min_role: str = Role.VIEWER, create_personal: bool = False
) -> tuple[Project, str]:
    try:
        return resolve_experiment_name(
            user=user, full_name=full_name, min_role=min_role, create_personal=create_personal
        )
    except ValidationFailed:
        raise ValidationFailed("Registered model name cannot be empty.")


def _with_details(qs: QuerySet) -> QuerySet:
    return qs.select_related("project").prefetch_related(
        "tags",
        Prefetch("aliases", queryset=ModelAlias.objects.select_related("model_version").order_by("alias")),
    )


def registered_model_list(*, user: User, project: Project) -> QuerySet[RegisteredModel]:
    check_role(user=user, project=project, min_role=Role.VIEWER)
    return _with_details(RegisteredModel.objects.filter(project=project)).order_by("name")


def registered_model_visible_list(*, user: User) -> QuerySet[RegisteredModel]:
    return _with_details(RegisteredModel.objects.filter(project__in=project_visible_ids(user=user))).order_by("name")


def registered_model_get(*, user: User, name: str, min_role: str = Role.VIEWER) -> RegisteredModel:
    try:
        project, short = resolve_model_name(user=user, full_name=name, min_role=min_role)
    except NotFound:
        raise NotFound(f"Registered Model with name={name} not found")
    model = _with_details(RegisteredModel.objects.filter(project=project, name=short)).first()
    if model is None:
        raise NotFound(f"Registered Model with name={name} not found")
    return model


def _parse_version(version: object) -> int:
    try:
        return int(str(version))
    except (TypeError, ValueError):
        raise ValidationFailed(f"Model version must be an integer, got '{version}'.")


def version_queryset() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related(
        "registered_model__project", "run__experiment", "logged_model__experiment", "created_by"
    ).prefetch_related("tags", "aliases")


def model_versions_after(*, project_id: int, name: str, after_version: int) -> QuerySet[ModelVersion]:
    """Versions of one registered model registered after `after_version`, oldest first
    (for the system's own use: auto-canary inside the endpoint's project)."""
    return (
        ModelVersion.objects.select_related("registered_model", "run")
        .filter(registered_model__project_id=project_id, registered_model__name=name, version__gt=after_version)
        .order_by("version")
    )


def model_version_get(*, user: User, name: str, version: object, min_role: str = Role.VIEWER) -> ModelVersion:
    model = registered_model_get(user=user, name=name, min_role=min_role)
    mv = version_queryset().filter(registered_model=model, version=_parse_version(version)).first()
    if mv is None:
        raise NotFound(f"Model Version (name={name}, version={version}) not found")
    return mv


def model_version_get_by_alias(*, user: User, name: str, alias: str) -> ModelVersion:
    model = registered_model_get(user=user, name=name)
    link = ModelAlias.objects.filter(registered_model=model, alias=alias).first()
    if link is None:
        raise NotFound(f"Registered model alias {alias} not found.")
    return version_queryset().get(pk=link.model_version_id)


def model_version_latest(*, user: User, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
    model = registered_model_get(user=user, name=name)
    versions = list(version_queryset().filter(registered_model=model).order_by("-version"))
    latest: dict[str, ModelVersion] = {}
    for mv in versions:
        latest.setdefault(mv.current_stage, mv)
    wanted = {s.lower() for s in stages} if stages else None
    return [mv for stage, mv in latest.items() if wanted is None or stage.lower() in wanted]


@dataclass(frozen=True)
class SearchPage:
    items: list
    next_page_token: str | None


def _page(qs: QuerySet, limit: int, page_token: str | None) -> SearchPage:
    return SearchPage(*search.paginate(qs, limit, page_token))


def registered_model_search(
    *,
    user: User,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
    default_project_id: int | None = None,
    plain_names: bool = False,
) -> SearchPage:
    """MLflow's registered-models/search over the models the user sees. `name` in the
    filter and the order is the MLflow name (see registry.search.mlflow_name), or the
    plain name with `plain_names` (our REST API, which shows the project apart)."""
    limit = _max_results(max_results, default=100, threshold=1000)
    qs = (
        registered_model_visible_list(user=user)
        .annotate(
            mlflow_name=registry_search.mlflow_name(default_project_id=default_project_id, plain=plain_names),
            mlflow_full_name=registry_search.mlflow_name(plain=plain_names),
        )
        .filter(registry_search.registered_model_filter(filter_string))
        .order_by(*registry_search.registered_model_order(order_by), "pk")
    )
    return _page(qs, limit, page_token)


def model_version_latest_by_model(*, models: list[RegisteredModel]) -> dict[int, list[ModelVersion]]:
    """The latest version per stage of each model, in one query (plus prefetches), as
    MLflow's search shows them; the caller got `models` through an access-checked read."""
    latest = (
        version_queryset()
        .filter(registered_model__in=[m.pk for m in models])
        .annotate(
            stage_rank=Window(
                RowNumber(), partition_by=[F("registered_model"), F("current_stage")], order_by=F("version").desc()
            )
        )
        .filter(stage_rank=1)
        .order_by("registered_model", "-version")
    )
    out: dict[int, list[ModelVersion]] = {}
    for mv in latest if models else []:
        out.setdefault(mv.registered_model_id, []).append(mv)
    return out


def model_version_search(
    *,
    user: User,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
    default_project_id: int | None = None,
    plain_names: bool = False,
    registered_model: RegisteredModel | None = None,
) -> SearchPage:
    """MLflow's model-versions/search over the versions the user sees (of one model when
    `registered_model` is given, which the caller got through an access-checked read)."""
    limit = _max_results(max_results, default=10000, threshold=200_000)
    qs = version_queryset().filter(registered_model__project__in=project_visible_ids(user=user))
    if registered_model is not None:
        qs = qs.filter(registered_model=registered_model)
    qs = (
        qs.annotate(
            mlflow_name=registry_search.mlflow_name(
                prefix="registered_model__", default_project_id=default_project_id, plain=plain_names
            ),
            mlflow_full_name=registry_search.mlflow_name(prefix="registered_model__", plain=plain_names),
        )
        .filter(registry_search.model_version_filter(filter_string))
        .order_by(*registry_search.model_version_order(order_by))
    )
    return _page(qs, limit, page_token)


def _max_results(value: int | None, *, default: int, threshold: int) -> int:
    if value is None:
        return default
    if value < 1 or value > threshold:
        raise ValidationFailed(
            f"Invalid value for request parameter max_results. It must be at most {threshold}, but got value {value}"
        )
    return value


def model_version_local_dir(*, version: ModelVersion) -> Path:
    """The local directory holding the version's MLmodel file."""
    if version.logged_model_id is not None:
        return model_local_dir(version.logged_model)
    if version.run_id is not None:
        from registry.sources import resolve_source

        resolved = resolve_source(source=version.source, project=version.registered_model.project)
        base = run_local_dir(version.run)
        return base / resolved.path if resolved.path else base
    raise NotFound(f"Model version {version} has no files in the artifact store.")
