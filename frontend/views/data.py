"""Pages of the Data section: streams (live numbers, rate, latest records, the
quarantine with release), creating one, its tokens and how to send to it."""

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from data import live, selectors, services
from data.models import SourceKind
from frontend.views.common import call_service, chosen_project, get_or_404, offer_projects
from mlplatform.errors import ApplicationError
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role, role_at_least
from projects.models import slug_validator

SCHEMA_HELP = "JSON Schema for one record. Leave empty: it is inferred from the first records, then frozen."


class JsonField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc


class StreamForm(forms.Form):
    project = forms.ChoiceField()
    name = forms.CharField(max_length=120)
    slug = forms.CharField(
        max_length=50, required=False, validators=[slug_validator], help_text="The URL: /ingest/<project>/<slug>."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=20000)
    source = forms.ChoiceField(choices=SourceKind.choices, initial=SourceKind.HTTP)
    schema = JsonField(widget=forms.Textarea(attrs={"rows": 4, "class": "code"}), required=False, help_text=SCHEMA_HELP)
    retention_days = forms.IntegerField(min_value=0, initial=0, help_text="0 keeps the archive forever.")
    mqtt_url = forms.CharField(
        max_length=300, required=False, label="MQTT broker URL", help_text="mqtt://host:1883 or mqtts://host:8883"
    )
    mqtt_topics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,
        label="MQTT topic patterns",
        help_text="One per line, e.g. plant/+/temperature",
    )
    mqtt_username = forms.CharField(max_length=200, required=False, label="MQTT username")
    mqtt_password = forms.CharField(
        max_length=500,
        required=False,
        label="MQTT password",
        widget=forms.PasswordInput,
        strip=False,
        help_text="Stored encrypted.",
    )

    score_endpoint = forms.CharField(
        max_length=50,
        required=False,
        label="Live scoring endpoint",
        help_text="An endpoint's slug: records are scored in micro-batches into <stream>-predictions.",
    )
    score_token = forms.CharField(
        max_length=500,
        required=False,
        label="Endpoint token",
        widget=forms.PasswordInput,
        strip=False,
        help_text="For a non-public endpoint; stored encrypted.",
    )

    def clean_mqtt_topics(self):
        return [t.strip() for t in self.cleaned_data["mqtt_topics"].splitlines() if t.strip()]


def _stream(request, project: str, stream: str, min_role: str = Role.VIEWER):
    try:
        return get_or_404(selectors.stream_get, user=request.user, project_slug=project, slug=stream, min_role=min_role)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def stream_list(request):
    streams = list(selectors.stream_list(user=request.user))
    numbers = {n["id"]: n for n in live.list_snapshot(streams)["streams"]}
    for stream in streams:
        stream.rate = numbers[stream.pk]["rate"]
    return render(request, "frontend/data/list.html", {"streams": streams})


@login_required
def stream_create(request):
    form = StreamForm(request.POST or None)
    offer_projects(form, request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        project = chosen_project(form, data, request.user, Role.DATA_SCIENTIST)
        stream = project and call_service(form, services.stream_create, project=project, actor=request.user, **data)
        if stream:
            _, raw = services.ingest_token_create(stream=stream, actor=request.user, name="first token")
            request.session["ingest_token"] = raw
            messages.success(request, f"Stream '{stream.name}' created, with its first ingest token.")
            return redirect("stream-detail", project=project.slug, stream=stream.slug)
    return render(request, "frontend/data/form.html", {"form": form})


def _examples(request, stream, token: str) -> dict[str, str]:
    url = request.build_absolute_uri(stream.ingest_path)
    token = token or "<ingest token>"
    examples = {
        "curl": (
            f"curl -X POST {url} \\\n  -H 'Authorization: Bearer {token}' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            '  -d \'[{"sensor": "s1", "temperature": 21.5}, {"sensor": "s2", "temperature": 19.0}]\''
        ),
        "curl_csv": (
            f"printf 'sensor,temperature\\ns1,21.5\\n' | curl -X POST {url} \\\n"
            f"  -H 'Authorization: Bearer {token}' -H 'Content-Type: text/csv' --data-binary @-"
        ),
    }
    if stream.source == SourceKind.MQTT and stream.mqtt_topics:
        from urllib.parse import urlsplit

        broker = urlsplit(stream.mqtt_url)
        topic = stream.mqtt_topics[0].replace("+", "s1").replace("#", "s1")
        auth = f" -u {stream.mqtt_username} -P '<password>'" if stream.mqtt_username else ""
        tls = " --capath /etc/ssl/certs" if broker.scheme == "mqtts" else ""
        examples["mosquitto_pub"] = (
            f"mosquitto_pub -h {broker.hostname} -p {broker.port or (8883 if tls else 1883)}{auth}{tls} -q 1 \\\n"
            f'  -t \'{topic}\' -m \'{{"sensor": "s1", "temperature": 21.5}}\''
        )
    return examples


@login_required
def stream_detail(request, project: str, stream: str):
    found = _stream(request, project, stream)
    token = request.session.pop("ingest_token", None)
    can_change = role_at_least(found.project.my_role, Role.DATA_SCIENTIST)
    snapshot = live.stream_snapshot(found)
    context = {
        "stream": found,
        "can_change": can_change,
        "token": token,
        "tokens": selectors.token_list(stream=found) if can_change else [],
        "examples": _examples(request, found, token or ""),
        "snapshot": snapshot,
        "schema_json": json.dumps(found.schema, indent=2) if found.schema is not None else "",
        "max_body_mb": settings.INGEST_MAX_BODY_BYTES // (1024 * 1024),
    }
    return render(request, "frontend/data/detail.html", context)


@login_required
@require_POST
def stream_action(request, project: str, stream: str):
    found = _stream(request, project, stream, Role.DATA_SCIENTIST)
    action = request.POST.get("action", "")
    try:
        if action == "release":
            ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()] or None
            released, held = services.quarantine_release(stream=found, actor=request.user, ids=ids)
            messages.success(request, f"Released {released} record(s); {held} still do not fit the schema.")
        elif action == "token":
            _, raw = services.ingest_token_create(stream=found, actor=request.user, name=request.POST.get("name", ""))
            request.session["ingest_token"] = raw
            messages.success(request, "New ingest token created: copy it now, it is shown once.")
        elif action == "revoke":
            token = selectors.token_get(stream=found, token_id=int(request.POST.get("token", "0") or 0))
            services.ingest_token_revoke(token=token, actor=request.user)
            messages.success(request, f"Token {token.prefix}… revoked.")
        elif action == "schema":
            raw = request.POST.get("schema", "").strip()
            schema = json.loads(raw) if raw else None
            services.stream_update(stream=found, actor=request.user, schema=schema)
            messages.success(
                request, "Schema saved." if schema is not None else "Schema cleared: the next records define it."
            )
        elif action in {"pause", "resume"}:
            services.stream_update(stream=found, actor=request.user, status="paused" if action == "pause" else "active")
            messages.success(request, f"Stream {'paused' if action == 'pause' else 'resumed'}.")
        else:
            messages.error(request, "Unknown action.")
    except ValueError as exc:
        messages.error(request, f"Not valid JSON: {exc}")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("stream-detail", project=project, stream=stream)
