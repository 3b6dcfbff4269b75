"""Model registry pages: the models I can see, one model's versions and aliases, and a
version's provenance (version -> run -> datasets -> code)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from data.datasets.selectors import input_versions
from frontend.views import lifecycle
from frontend.views.common import get_or_404
from frontend.views.experiments import tracking_uri
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.errors import ValidationFailed
from registry import selectors_ui


def _call(fn, **kwargs):
    try:
        return get_or_404(fn, **kwargs)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def model_list(request):
    text = request.GET.get("filter", "").strip()
    error = None
    try:
        models = list(selectors_ui.model_overview(user=request.user, filter_string=text)[:500])
    except ValidationFailed as exc:  # a typo in the search box is the user's to fix: show it
        models, error = [], exc.message
    context = {"models": models, "filter": text, "filter_error": error, "tracking_uri": tracking_uri(request)}
    return render(request, "frontend/models/list.html", context)


@login_required
def model_detail(request, slug: str, name: str):
    model = _call(selectors_ui.model_get, user=request.user, project_slug=slug, name=name)
    versions = selectors_ui.version_list(model=model)
    return render(
        request,
        "frontend/models/detail.html",
        {"model": model, "project": model.project, "versions": versions, "aliases": list(model.aliases.all())},
    )


@login_required
def model_version(request, slug: str, name: str, version: int):
    model = _call(selectors_ui.model_get, user=request.user, project_slug=slug, name=name)
    provenance = _call(selectors_ui.version_provenance, model=model, version=version)
    current = {(d.dataset.name, d.dataset.digest): d for d in provenance.datasets}
    frozen = [
        {**d, "input": current.get((d.get("name"), d.get("digest")))} for d in provenance.version.dataset_digests or []
    ]
    ours = input_versions(project=model.project, inputs=provenance.datasets)
    for item in frozen:
        item["version"] = ours.get(item["input"].pk) if item["input"] is not None else None
    return render(
        request,
        "frontend/models/version.html",
        {
            "model": model,
            "project": model.project,
            "mv": provenance.version,
            "prov": provenance,
            "datasets": frozen,
            "params": sorted((provenance.version.params or {}).items()),
            "code": sorted(provenance.code.items()),
            "commit": provenance.code.get("mlflow.source.git.commit", ""),
            "repo": provenance.code.get("mlflow.source.git.repoURL", ""),
            "source_name": provenance.code.get("mlflow.source.name", ""),
            "aliases": sorted(a.alias for a in provenance.version.aliases.all()),
            **lifecycle.version_context(request.user, model.project, provenance.version),
        },
    )
