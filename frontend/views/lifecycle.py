"""The model lifecycle across pages: register a run's logged model (new model or new
version), a version's aliases, deploy a version to one of the project's endpoints,
where a version serves now and what it served before, and the pickers' choices
(search-as-you-type over models, versions, runs) that the deploy and gate forms use.

Every write goes through the owning app's service, after the role check here."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deployments import selectors as deployment_selectors
from deployments import services as deployment_services
from experiments import selectors as experiment_selectors
from experiments.models import LoggedModel, Run
from frontend.views.common import get_or_404
from jobs.models import Job
from mlplatform.errors import ApplicationError
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role, role_at_least
from projects.selectors import project_check, project_role
from registry import selectors_ui
from registry import services as registry_services
from registry.models import ModelVersion, RegisteredModel

PICKER_LIMIT = 500


def _role(user, project, min_role: str):
    try:
        return project_check(user=user, project=project, min_role=min_role)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


# -- run page -------------------------------------------------------------------------
def run_models_context(user, run: Run, project, versions: list[ModelVersion]) -> dict:
    """The run's MLflow 3 logged models, each with the version it was registered as."""
    registered = {mv.logged_model_id: mv for mv in versions if mv.logged_model_id}
    logged = list(LoggedModel.objects.filter(source_run=run).order_by("creation_timestamp"))
    role = project_role(user=user, project=project)
    return {
        "logged_models": [(lm, registered.get(lm.pk)) for lm in logged],
        "can_register": user.is_admin or (role is not None and role_at_least(role, Role.DATA_SCIENTIST)),
        "model_names": list(
            RegisteredModel.objects.filter(project=project).order_by("name").values_list("name", flat=True)
        ),
    }


@login_required
@require_POST
def run_register(request, run_id: str):
    run = get_or_404(experiment_selectors.run_get, user=request.user, run_id=run_id)
    project = _role(request.user, run.experiment.project, Role.DATA_SCIENTIST)
    logged = LoggedModel.objects.filter(pk=request.POST.get("logged_model", ""), source_run=run).first()
    if logged is None:
        raise Http404("That logged model is not one of this run's.")
    name = request.POST.get("name", "").strip()
    try:
        model = registry_services.registered_model_get_or_create(project=project, name=name, user=request.user)
        version = registry_services.model_version_create(
            registered_model=model, source=f"models:/{logged.pk}", user=request.user, model_id=logged.pk
        )
    except ApplicationError as exc:
        messages.error(request, f"Not registered: {exc.message}")
        return redirect("run-detail", run_id=run.pk)
    messages.success(request, f"Registered as {model.name} version {version.version}.")
    return redirect("model-version", slug=project.slug, name=model.name, version=version.version)


# -- model version page ---------------------------------------------------------------
def version_context(user, project, mv: ModelVersion) -> dict:
    """Aliases, deploy targets, where the version serves now and its history, and the
    job that trained it (code provenance for job-trained versions)."""
    role = project_role(user=user, project=project)
    can = lambda minimum: user.is_admin or (role is not None and role_at_least(role, minimum))  # noqa: E731
    serving = deployment_selectors.version_serving(model_version_id=mv.pk)
    job = Job.objects.select_related("image").filter(run_id=mv.run_id).first() if mv.run_id else None
    return {
        "can_alias": can(Role.DATA_SCIENTIST),
        "can_deploy": can(Role.ML_ENGINEER),
        "can_trust": can(Role.OWNER),
        "endpoints": list(deployment_selectors.endpoint_list(user=user, project=project)),
        "serving_now": serving["now"],
        "serving_history": serving["history"],
        "job": job,
        "job_command": " ".join(job.command) if job else "",
        "dataset_choices": _dataset_choices(project) if can(Role.ML_ENGINEER) else [],
    }


def _version(request, slug: str, name: str, version: int, min_role: str):
    try:
        model = get_or_404(selectors_ui.model_get, user=request.user, project_slug=slug, name=name, min_role=min_role)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc
    return model, get_or_404(selectors_ui.version_get, model=model, version=version)


@login_required
@require_POST
def version_alias(request, slug: str, name: str, version: int):
    model, mv = _version(request, slug, name, version, Role.DATA_SCIENTIST)
    alias = request.POST.get("alias", "").strip()
    try:
        if request.POST.get("action") == "delete":
            registry_services.alias_delete(registered_model=model, alias=alias, user=request.user)
            messages.success(request, f"Alias @{alias} removed.")
        else:
            registry_services.alias_set(registered_model=model, alias=alias, version=mv, user=request.user)
            messages.success(request, f"@{alias} now points at version {mv.version}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("model-version", slug=slug, name=name, version=version)


@login_required
@require_POST
def version_deploy(request, slug: str, name: str, version: int):
    model, mv = _version(request, slug, name, version, Role.VIEWER)
    post = request.POST
    try:
        endpoint = deployment_selectors.endpoint_get(
            user=request.user, slug=post.get("endpoint", ""), min_role=Role.ML_ENGINEER
        )
        trusted = post.get("trusted") == "on"
        if trusted and not role_at_least(endpoint.project.my_role, Role.OWNER) and not request.user.is_admin:
            raise NotAllowed("Only a project owner may mark a pickle-based version trusted.")
        revision = deployment_services.revision_deploy(
            endpoint=endpoint,
            actor=request.user,
            model_name=f"{slug}/{model.name}",
            version=mv.version,
            role=post.get("role", "champion"),
            traffic=_share(post.get("traffic", "0.1")),
            trusted=trusted,
            reference_mode=post.get("reference_mode", "auto"),
            reference=_dataset_reference(post.get("reference_dataset", "")),
            burn_in_rows=_count(post.get("burn_in_rows", "200")),
            gate_override_reason=post.get("gate_override_reason", ""),
        )
    except ApplicationError as exc:
        messages.error(request, f"Not deployed: {exc.message}")
        return redirect("model-version", slug=slug, name=name, version=version)
    messages.success(request, f"Revision {revision.number} of {endpoint.name} is deploying.")
    return redirect("endpoint-detail", slug=endpoint.slug)


def _dataset_choices(project) -> list[str]:
    """`<dataset>@<alias>` and `<dataset>@<id prefix>` of the project's newest versions,
    for the drift-reference picker."""
    from data.models import DatasetVersion

    versions = (
        DatasetVersion.objects.filter(dataset__project=project)
        .select_related("dataset")
        .prefetch_related("aliases")
        .order_by("-created_at", "-id")[:PICKER_LIMIT]
    )
    choices: list[str] = []
    for version in versions:
        names = [f"{version.dataset.name}@{a.alias}" for a in version.aliases.all()]
        choices += [*names, f"{version.dataset.name}@{version.digest[:12]}"]
    return choices


def _dataset_reference(text: str) -> str | None:
    text = text.strip()[:300]
    return f"dataset:{text}" if text else None


def _share(text: str) -> float:
    from mlplatform.errors import ValidationFailed

    try:
        return float(text)
    except ValueError:
        raise ValidationFailed("Traffic is a share between 0 and 1.")


def _count(text: str) -> int:
    from mlplatform.errors import ValidationFailed

    try:
        return int(text)
    except ValueError:
        raise ValidationFailed("Burn-in rows is a whole number.")


# -- pickers --------------------------------------------------------------------------
def picker_choices(project) -> dict:
    """What the pickers offer in one project: its models with their versions (newest
    first, labelled with run and metrics) and its recent runs. The browser filters them
    as the user types (datalist)."""
    versions = (
        ModelVersion.objects.filter(registered_model__project=project)
        .select_related("registered_model", "run")
        .order_by("registered_model__name", "-version")[:PICKER_LIMIT]
    )
    models: dict[str, list] = {}
    for mv in versions:
        label = f"v{mv.version}"
        if mv.run is not None:
            label += f" · run {mv.run.name or mv.run_id[:8]}"
        models.setdefault(f"{project.slug}/{mv.registered_model.name}", []).append(
            {"version": mv.version, "label": label}
        )
    runs = Run.objects.filter(experiment__project=project).select_related("experiment").order_by("-start_time")
    return {
        "models": models,
        "datasets": _dataset_choices(project),
        "runs": [
            {"id": r.pk, "label": f"{r.name or r.pk[:8]} · {r.experiment.name} · {r.status.lower()}"}
            for r in runs[:PICKER_LIMIT]
        ],
    }
