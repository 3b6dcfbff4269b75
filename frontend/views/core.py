from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from frontend.forms import TokenForm
from frontend.views.common import call_service, get_or_404
from mlplatform import selectors as core_selectors
from mlplatform import services as core_services
from mlplatform.errors import ApplicationError
from projects import selectors as project_selectors

UPCOMING = {
    "ideation": (
        "Ideation",
        "Workshop boards where stakeholders and data scientists collect pain points and "
        "low-hanging fruit, vote, and agree on KPIs. Good ideas become projects.",
    ),
    "experiments": (
        "Experiments",
        "Runs logged with the MLflow client you already use, and jobs submitted "
        "from this UI that run in containers with live logs.",
    ),
    "models": ("Models", "The model registry: versions with provenance (run, data, code), aliases and approvals."),
    "deployments": (
        "Deployments",
        "Managed REST endpoints with canary and shadow rollouts, automatic rollback and live monitoring dashboards.",
    ),
    "data": (
        "Data",
        "Ingestion over HTTP and MQTT that archives every record, versioned datasets with lineage, "
        "and retraining triggers.",
    ),
}


@login_required
def home(request):
    projects = list(project_selectors.project_list(user=request.user)[:12])
    return render(request, "frontend/home.html", {"projects": projects})


@login_required
def upcoming_section(request, section: str):
    title, blurb = UPCOMING[section]
    return render(request, "frontend/upcoming.html", {"title": title, "blurb": blurb, "section": section})


@login_required
def token_list(request):
    projects = project_selectors.project_list(user=request.user)
    form = TokenForm(request.POST or None, projects=projects)
    created = None
    if request.method == "POST" and form.is_valid():
        slug = form.cleaned_data["project"]
        try:
            project = project_selectors.project_get(user=request.user, slug=slug) if slug else None
        except ApplicationError as exc:
            form.add_error("project", exc.message)
        else:
            result = call_service(
                form,
                core_services.api_token_create,
                user=request.user,
                name=form.cleaned_data["name"],
                project=project,
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
            if result is not None:
                created = result[1]
                form = TokenForm(projects=projects)
    tokens = core_selectors.api_token_list(user=request.user)
    return render(request, "frontend/tokens.html", {"form": form, "tokens": tokens, "created": created})


@login_required
@require_POST
def token_revoke(request, token_id: int):
    token = get_or_404(core_services.api_token_revoke, token_id=token_id, actor=request.user)
    messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("token-list")
