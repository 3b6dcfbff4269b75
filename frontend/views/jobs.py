"""Job pages: submit (or run again with changes), the live list, the live detail with
its log tail, progress and system-metric charts, and the sweep page."""

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
import plotly.graph_objects as go

from frontend.views.common import call_service, get_or_404
from jobs import selectors, services, spec
from jobs.models import Executor, JobStatus
from mlplatform import jsondepth
from mlplatform.errors import ApplicationError
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role, role_at_least
from projects.selectors import project_get, project_list

EXAMPLE_SCRIPT = """import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
for epoch in range(1, 6):
    model = LogisticRegression(max_iter=epoch * 20).fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    print(f"epoch {epoch}: accuracy {accuracy:.3f}")
    mlflow.log_metric("accuracy", accuracy, step=epoch)
    mlflow.log_metric("progress", epoch / 5)
"""


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """`NAME=value` lines (or a JSON object) into a dict."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = jsondepth.loads(text)
        except jsondepth.TooDeep as exc:
            raise forms.ValidationError(f"{what}: {exc}") from exc
        except ValueError as exc:
            raise forms.ValidationError(f"{what}: not valid JSON.") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(f"{what}: give an object or NAME=value lines.")
        return value
    pairs = {}
    for line in text.splitlines():
        if line.strip():
            name, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"{what}: '{line.strip()}' is not NAME=value.")
            pairs[name.strip()] = value.strip()
    return pairs


class JobForm(forms.Form):
    project = forms.ChoiceField()
    name = forms.CharField(max_length=200, required=False, help_text="Shown in lists; defaults to the script.")
    executor = forms.ChoiceField(choices=Executor.choices, initial=Executor.LOCAL)
    image = forms.ChoiceField(required=False, help_text="Container image (docker only), from the allow-list.")
    script = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "code", "spellcheck": "false"}),
        required=False,
        help_text="An inline script, saved as main.py. Or upload a bundle below.",
    )
    bundle = forms.FileField(required=False, help_text="A .zip or .tar.gz of your code (no links, no ../ paths).")
    command = forms.CharField(
        required=False,
        help_text='Argument list as JSON, e.g. ["python", "train.py"]. Empty: python main.py.',
    )
    params = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="name=value lines; passed as --name value."
    )
    env = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="NAME=value lines.")
    secret_env = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Secret env",
        help_text="NAME=value lines; never shown again, masked in logs. Kept when the same code runs again.",
    )
    cpus = forms.FloatField(label="CPUs", initial=1.0, min_value=0.05, max_value=256)
    memory = forms.CharField(initial="1g", help_text="e.g. 512m, 2g")
    timeout = forms.IntegerField(initial=600, min_value=1, help_text="Seconds.")
    gpus = forms.IntegerField(label="GPUs", initial=0, min_value=0, max_value=16)
    experiment_name = forms.CharField(max_length=200, initial="Default", label="Experiment")

    def __init__(self, *args, projects=(), images=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [(p.slug, p.name) for p in projects]
        self.fields["image"].choices = [(i.name, i.name) for i in images]

    def clean(self):
        data = super().clean()
        for key, label in (("params", "Params"), ("env", "Env"), ("secret_env", "Secret env")):
            data[key] = parse_pairs(data.get(key, ""), label)
        command = (data.get("command") or "").strip()
        if command:
            try:
                data["command"] = jsondepth.loads(command)
            except ValueError:
                data["command"] = command  # the service refuses it with the shell-string message
        return data


def _submittable_projects(user):
    return [p for p in project_list(user=user) if user.is_admin or role_at_least(p.my_role, Role.DATA_SCIENTIST)]


def _rerun_initial(job) -> dict:
    return {
        "project": job.project.slug,
        "name": job.name,
        "executor": job.executor,
        "image": job.image.name if job.image else "",
        "script": job.script,
        "command": json.dumps(job.command),
        "params": "\n".join(f"{k}={v}" for k, v in job.params.items()),
        "env": "\n".join(f"{k}={v}" for k, v in job.env.items()),
        "cpus": job.cpus,
        "memory": f"{job.memory_mb}m",
        "timeout": job.timeout_seconds,
        "gpus": job.gpus,
        "experiment_name": job.experiment_name,
    }


def _job(request, job_id: int, min_role: str = Role.VIEWER):
    try:
        return get_or_404(selectors.job_get, user=request.user, job_id=job_id, min_role=min_role)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def job_list(request):
    slug = request.GET.get("project")
    project = get_or_404(project_get, user=request.user, slug=slug) if slug else None
    jobs = selectors.job_list(user=request.user, project=project, status=request.GET.get("status") or None)[:200]
    return render(
        request,
        "frontend/jobs/list.html",
        {
            "jobs": jobs,
            "project": project,
            "sweeps": selectors.sweep_list(user=request.user, project=project)[:10],
            "statuses": JobStatus.choices,
        },
    )


def _submit(form: JobForm, request, rerun_of):
    data = form.cleaned_data
    project = get_or_404(project_get, user=request.user, slug=data["project"], min_role=Role.DATA_SCIENTIST)
    upload = data.get("bundle")
    if upload is not None and upload.size > spec.bundle_limit():
        form.add_error("bundle", f"The bundle is over the {spec.bundle_limit()} byte limit.")
        return None
    kwargs = {
        "name": data["name"],
        "executor": data["executor"],
        "image": data.get("image") or None,
        "script": data["script"],
        "bundle": upload.read() if upload else None,
        "bundle_name": upload.name if upload else "",
        "command": data.get("command") or None,
        "params": data["params"],
        "env": data["env"],
        "secret_env": data["secret_env"],
        "resources": {"cpus": data["cpus"], "memory": data["memory"], "timeout": data["timeout"], "gpus": data["gpus"]},
        "experiment_name": data["experiment_name"],
    }
    if rerun_of is not None:
        # The form shows neither secret values nor the bundle: the rerun service decides
        # what of them the new job keeps, as it does for the API.
        if upload is None:
            del kwargs["bundle"], kwargs["bundle_name"]
        return call_service(form, services.job_rerun, job=rerun_of, user=request.user, changes=kwargs)
    return call_service(form, services.job_submit, project=project, user=request.user, **kwargs)


@login_required
def job_submit(request):
    rerun_of = _job(request, int(request.GET["rerun"]), Role.DATA_SCIENTIST) if request.GET.get("rerun") else None
    # A rerun runs in its job's project: its code and secrets do not move elsewhere.
    projects = [rerun_of.project] if rerun_of else _submittable_projects(request.user)
    initial = (
        _rerun_initial(rerun_of) if rerun_of else {"script": EXAMPLE_SCRIPT, "project": request.GET.get("project")}
    )
    form = JobForm(
        request.POST or None,
        request.FILES or None,
        projects=projects,
        images=selectors.image_list(),
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        job = _submit(form, request, rerun_of)
        if job is not None:
            messages.success(request, f"Job #{job.pk} queued.")
            not_kept = sorted(set(rerun_of.secret_env) - set(job.secret_env)) if rerun_of else []
            if not_kept:
                messages.warning(
                    request,
                    f"Secrets not kept, since the code changed and someone else entered them: {', '.join(not_kept)}.",
                )
            return redirect("job-detail", job_id=job.pk)
    return render(request, "frontend/jobs/submit.html", {"form": form, "rerun_of": rerun_of, "projects": projects})


def metric_figures(series: dict[str, list[tuple]]) -> list[dict]:
    """One plotly figure for system metrics, one for what the job logged."""
    groups = {
        "System": {k: v for k, v in series.items() if k.startswith("system/")},
        "Metrics": {k: v for k, v in series.items() if not k.startswith("system/") and k != "progress"},
    }
    figures = []
    for title, keys in groups.items():
        if not keys:
            continue
        fig = go.Figure()
        for key, points in keys.items():
            x = [step for _ts, _v, step in points] if title == "Metrics" else [ts.isoformat() for ts, _v, _s in points]
            fig.add_trace(go.Scatter(x=x, y=[v for _ts, v, _s in points], name=key, mode="lines+markers"))
        fig.update_layout(
            title=title, height=320, margin={"l": 40, "r": 10, "t": 40, "b": 70}, legend={"orientation": "h"}
        )
        figures.append({"id": title.lower(), "json": fig.to_json()})
    return figures


@login_required
def job_detail(request, job_id: int):
    job = _job(request, job_id)
    can_act = role_at_least(job.project.my_role, Role.DATA_SCIENTIST)
    return render(
        request,
        "frontend/jobs/detail.html",
        {
            "job": job,
            "lines": selectors.job_log_tail(job=job, lines=500),
            "events": selectors.job_events(job=job),
            "figures": metric_figures(selectors.job_metric_series(job=job)),
            "can_act": can_act,
            "command": " ".join(json.dumps(a) if " " in a else a for a in job.command),
        },
    )


@login_required
@require_POST
def job_cancel(request, job_id: int):
    job = _job(request, job_id, Role.DATA_SCIENTIST)
    try:
        services.job_cancel(job=job, actor=request.user)
        messages.success(request, f"Cancelling job #{job.pk}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("job-detail", job_id=job.pk)


@login_required
def job_log_download(request, job_id: int):
    job = _job(request, job_id)
    response = StreamingHttpResponse(
        (line + "\n" for line in selectors.job_log_iter(job=job)), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.log"'
    return response


def axis_values(values: list) -> list:
    """Numbers when every value is one (an ordered axis), else the text."""
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return [str(v) for v in values]


def sweep_figures(sweep, rows: list[dict]) -> list[dict]:
    scored = [r for r in rows if r["metric"] is not None]
    figures = []
    for name in sweep.space:
        fig = go.Figure(
            go.Scatter(
                x=axis_values([r["params"].get(name) for r in scored]),
                y=[r["metric"] for r in scored],
                mode="markers",
                marker={"size": 11},
                text=[f"job #{r['job'].pk}" for r in scored],
            )
        )
        fig.update_layout(
            title=f"{sweep.metric} vs {name}",
            height=280,
            margin={"l": 40, "r": 10, "t": 40, "b": 30},
            xaxis_title=name,
            yaxis_title=sweep.metric,
        )
        figures.append({"id": f"param-{len(figures)}", "json": fig.to_json()})
    return figures


@login_required
def sweep_detail(request, sweep_id: int):
    sweep = get_or_404(selectors.sweep_get, user=request.user, sweep_id=sweep_id)
    rows = selectors.sweep_children(sweep=sweep)
    for row in rows:
        row["values"] = [row["params"].get(name, "") for name in sweep.space]
    return render(
        request,
        "frontend/jobs/sweep.html",
        {"sweep": sweep, "rows": rows, "figures": sweep_figures(sweep, rows)},
    )
