"""Pages of the deployments section: endpoints, their live dashboard, deploys and the
manual routing actions (the same services the REST API and the policies call)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deployments import monitoring, selectors, services
from deployments.models import ChallengerMode
from frontend.views import lifecycle
from frontend.views.common import all_errors, call_service, chosen_project, get_or_404, offer_projects
from mlplatform.errors import ApplicationError
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role, role_at_least
from projects.models import slug_validator


class EndpointForm(forms.Form):
    project = forms.ChoiceField()
    name = forms.CharField(max_length=120)
    slug = forms.CharField(
        max_length=50, required=False, validators=[slug_validator], help_text="The URL: /serve/<slug>/invocations."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=20000)
    public = forms.BooleanField(required=False, help_text="Serve without a token, like `mlflow models serve`.")


class DeployForm(forms.Form):
    model = forms.CharField(
        max_length=300,
        help_text="Type to search this project's registered models (`<project>/<model>`).",
        widget=forms.TextInput(attrs={"list": "picker-models", "autocomplete": "off"}),
    )
    version = forms.IntegerField(
        min_value=1,
        help_text="Type to search the model's versions.",
        widget=forms.NumberInput(attrs={"list": "picker-versions", "autocomplete": "off"}),
    )
    role = forms.ChoiceField(choices=[("champion", "Champion (all traffic)"), *ChallengerMode.choices])
    traffic = forms.FloatField(min_value=0, max_value=1, initial=0.1, help_text="Canary share of live requests.")
    reference_mode = forms.ChoiceField(
        label="Drift reference",
        choices=[
            ("auto", "Training data: the run's logged dataset, else a sample saved at log_model, else burn-in"),
            ("burn_in", "Burn-in: the revision's first live rows"),
            ("none", "None: no drift measured for this revision"),
        ],
        initial="auto",
        help_text="Below the endpoint's minimum reference size drift reads 'no reference' and never triggers.",
    )
    reference_dataset = forms.CharField(
        label="Or a dataset version",
        required=False,
        max_length=300,
        help_text="`<dataset>@<version or alias>` of this project (no `@`: its @reference alias); "
        "its profile becomes the drift reference, whatever is chosen above.",
        widget=forms.TextInput(attrs={"list": "picker-datasets", "autocomplete": "off"}),
    )
    burn_in_rows = forms.IntegerField(
        min_value=10, max_value=100_000, initial=200, help_text="Rows of a burn-in reference."
    )
    gate_override_reason = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Platform admins only: deploy before the Production gate, with a reason.",
    )


class PolicyForm(forms.Form):
    """The endpoint's switches and policy limits (deployments.models.default_policy)."""

    auto_rollback = forms.BooleanField(required=False, help_text="Roll back a failing challenger.")
    auto_promote = forms.BooleanField(required=False, help_text="Promote a challenger that beats the champion.")
    auto_canary = forms.BooleanField(required=False, help_text="Deploy new versions as canaries.")
    max_error_rate = forms.FloatField(min_value=0, max_value=1, label="Max error rate", help_text="Share, e.g. 0.05.")
    max_p99_ms = forms.FloatField(min_value=0, label="Max p99 latency (ms)")
    max_psi = forms.FloatField(min_value=0, label="Max drift (PSI)")
    breach_seconds = forms.IntegerField(min_value=0, label="Breach window (s)", help_text="A limit held this long.")
    min_requests = forms.IntegerField(min_value=0, label="Min requests", help_text="Before a rollback decision.")
    kpi_metric = forms.ChoiceField(choices=[(m, m) for m in sorted(monitoring.KPI_METRICS)], label="KPI metric")
    min_feedback = forms.IntegerField(min_value=0, label="Min labelled predictions per arm")
    confidence = forms.FloatField(min_value=0.5, max_value=0.999, help_text="Of the promotion/rollback test.")
    promote_margin = forms.FloatField(min_value=0, label="Promote margin")
    kpi_rollback = forms.BooleanField(required=False, label="Roll back a challenger worse on the KPI")
    min_reference_rows = forms.IntegerField(min_value=0, label="Min drift reference rows")


SWITCHES = ("auto_rollback", "auto_promote", "auto_canary")


def dataset_reference(text: str) -> str | None:
    """The deploy service's name for a dataset version typed in a form."""
    text = (text or "").strip()
    return f"dataset:{text}" if text else None


def _policy_initial(endpoint) -> dict:
    return {**endpoint.policy, **{k: getattr(endpoint, k) for k in SWITCHES}}


def _references(endpoint) -> dict:
    min_rows = int(endpoint.policy.get("min_reference_rows", monitoring.MIN_REFERENCE_ROWS))
    return {
        role: selectors.drift_reference(revision=revision, min_rows=min_rows)
        for role, revision in (("champion", endpoint.champion), ("challenger", endpoint.challenger))
        if revision is not None
    }


def _example(endpoint) -> dict:
    """Column names (from the champion's signature) and a row for the snippets."""
    import json

    columns: list[str] = []
    if endpoint.champion is not None:
        columns = services.signature_names(endpoint.champion.model_dir)
    columns = columns or ["feature_1", "feature_2"]
    return {"example_columns": json.dumps(columns), "example_row": json.dumps([0.0] * len(columns))}


def _endpoint(request, slug: str, min_role: str = Role.VIEWER):
    try:
        return get_or_404(selectors.endpoint_get, user=request.user, slug=slug, min_role=min_role)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def endpoint_list(request):
    return render(request, "frontend/deployments/list.html", {"endpoints": selectors.endpoint_list(user=request.user)})


@login_required
def endpoint_create(request):
    form = EndpointForm(request.POST or None)
    offer_projects(form, request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        project = chosen_project(form, data, request.user, Role.ML_ENGINEER)
        created = project and call_service(form, services.endpoint_create, project=project, actor=request.user, **data)
        if created:
            endpoint, token = created
            messages.success(request, f"Endpoint '{endpoint.name}' created.")
            request.session["endpoint_token"] = token
            return redirect("endpoint-detail", slug=endpoint.slug)
    return render(request, "frontend/deployments/form.html", {"form": form})


@login_required
def endpoint_detail(request, slug: str):
    endpoint = _endpoint(request, slug)
    can_change = role_at_least(endpoint.project.my_role, Role.ML_ENGINEER)
    context = {
        "endpoint": endpoint,
        "revisions": selectors.revision_list(endpoint=endpoint)[:20],
        "events": selectors.event_list(endpoint=endpoint, limit=30),
        "deploy_form": DeployForm(initial={"traffic": 0.1, "reference_mode": "auto", "burn_in_rows": 200}),
        "pickers": lifecycle.picker_choices(endpoint.project),
        "policy_form": PolicyForm(initial=_policy_initial(endpoint)),
        "references": _references(endpoint),
        "can_change": can_change,
        "token": request.session.pop("endpoint_token", None),
        "serve_url": request.build_absolute_uri(f"/serve/{endpoint.slug}/invocations"),
        "feedback_url": request.build_absolute_uri(f"/serve/{endpoint.slug}/feedback"),
        **_example(endpoint),
    }
    return render(request, "frontend/deployments/detail.html", context)


@login_required
@require_POST
def endpoint_deploy(request, slug: str):
    endpoint = _endpoint(request, slug, Role.ML_ENGINEER)
    form = DeployForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        data["reference"] = dataset_reference(data.pop("reference_dataset"))
        revision = call_service(
            form, services.revision_deploy, endpoint=endpoint, actor=request.user, model_name=data.pop("model"), **data
        )
        if revision is not None:
            messages.success(request, f"Revision {revision.number} is deploying.")
            return redirect("endpoint-detail", slug=slug)
    messages.error(request, "Not deployed: " + all_errors(form))
    return redirect("endpoint-detail", slug=slug)


@login_required
@require_POST
def endpoint_policy(request, slug: str):
    endpoint = _endpoint(request, slug, Role.ML_ENGINEER)
    form = PolicyForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        switches = {k: data.pop(k) for k in SWITCHES}
        policy = {**endpoint.policy, **data}
        try:
            services.endpoint_update(endpoint=endpoint, actor=request.user, policy=policy, **switches)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Policies saved.")
    else:
        messages.error(request, "Policies not saved: " + all_errors(form))
    return redirect("endpoint-detail", slug=slug)


ACTIONS = {
    "promote": services.challenger_promote,
    "rollback": services.challenger_rollback,
    "rollback_champion": services.champion_rollback,
}


@login_required
@require_POST
def endpoint_action(request, slug: str):
    endpoint = _endpoint(request, slug, Role.ML_ENGINEER)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")[:2000]
    try:
        if action == "traffic":
            services.traffic_set(
                endpoint=endpoint, actor=request.user, traffic=float(request.POST.get("traffic", "0")), reason=reason
            )
        elif action in ("promote", "rollback"):
            # The revision the page showed: a stale page is answered with its real state.
            seen = request.POST.get("revision", "")
            ACTIONS[action](
                endpoint=endpoint,
                actor=request.user,
                reason=reason,
                revision_number=int(seen) if seen.isdigit() else None,
            )
        elif action in ACTIONS:
            ACTIONS[action](endpoint=endpoint, actor=request.user, reason=reason)
        else:
            messages.error(request, "Unknown action.")
            return redirect("endpoint-detail", slug=slug)
    except (ApplicationError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    else:
        messages.success(request, f"Done: {action.replace('_', ' ')}.")
    return redirect("endpoint-detail", slug=slug)
