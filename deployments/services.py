"""Writes of endpoints and revisions. Callers have checked the actor's role on the
endpoint's project (deployments.selectors) except where a docstring says otherwise.

Every routing change (champion, challenger, mode, traffic) bumps ServingConfig, which
the serving processes poll; every change appends an EndpointEvent (the timeline) and
an audit event, and is published to the endpoint's live group after commit. Automatic
actions (the policies) also notify the project's owners."""

import json
from pathlib import Path
import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.text import slugify

from deployments import links, monitoring, selectors
from deployments.models import (
    REVISION_TRANSITIONS,
    ChallengerMode,
    Endpoint,
    EndpointEvent,
    Revision,
    RevisionStatus,
    ServingConfig,
    default_policy,
)
from deployments.serving.config import token_hash
from deployments.serving.loader import ModelLoadError, read_mlmodel
from mlplatform import events
from mlplatform.audit import audit_record, snapshot
from mlplatform.errors import AlreadyExists, InvalidState, NotFound, PermissionDenied, ValidationFailed
from mlplatform.models import User
from projects.models import Membership, Project, slug_validator

ENDPOINT_FIELDS = [
    "name",
    "slug",
    "description",
    "public",
    "auto_rollback",
    "auto_promote",
    "auto_canary",
    "fast_path",
    "policy",
]
ROUTING_FIELDS = ["champion", "challenger", "challenger_mode", "traffic"]
EDITABLE = {
    "name",
    "description",
    "public",
    "auto_rollback",
    "auto_promote",
    "auto_canary",
    "fast_path",
    "policy",
    "payload_sample",
}
MAX_REFERENCE_ROWS = 100_000


def _bump_config() -> None:
    updated = ServingConfig.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        ServingConfig.objects.create(pk=1, version=1)


def endpoint_group(endpoint: Endpoint) -> str:
    return events.group_name("endpoint", endpoint.pk)


def _event(
    endpoint: Endpoint,
    kind: str,
    *,
    actor: User | None,
    revision: Revision | None = None,
    reason: str = "",
    automatic: bool = False,
    data: dict | None = None,
) -> EndpointEvent:
    event = EndpointEvent.objects.create(
        endpoint=endpoint,
        revision=revision,
        kind=kind,
        actor=actor if actor is not None and actor.is_authenticated else None,
        reason=reason,
        automatic=automatic,
        data=data or {},
    )
    payload = {
        "id": event.pk,
        "kind": kind,
        "revision": revision.number if revision else None,
        "reason": reason,
        "automatic": automatic,
        "actor": event.actor.username if event.actor else None,
        "at": event.created_at.isoformat(),
        "endpoint": endpoint.slug,
    }
    events.publish(endpoint_group(endpoint), "endpoint.event", payload)
    if automatic:
        owners = Membership.objects.filter(project_id=endpoint.project_id, role="owner").values_list(
            "user_id", flat=True
        )
        for user_id in owners:
            events.publish(
                events.group_name("user", user_id), "notification", {**payload, "title": _title(endpoint, kind)}
            )
    return event


def _title(endpoint: Endpoint, kind: str) -> str:
    return f"{endpoint.name}: {kind.replace('_', ' ')}"


def _routing(endpoint: Endpoint) -> dict[str, Any]:
    return snapshot(endpoint, ROUTING_FIELDS)


def _save_routing(endpoint: Endpoint, *, actor: User | None, action: str, before: dict, reason: str = "") -> None:
    endpoint.save(update_fields=[*ROUTING_FIELDS, "updated_at"])
    _bump_config()
    audit_record(
        actor=actor,
        action=action,
        target=endpoint,
        project_id=endpoint.project_id,
        before=before,
        after=_routing(endpoint),
        reason=reason,
    )


# -- endpoints ----------------------------------------------------------------------
def _new_token() -> tuple[str, str, str]:
    raw = "mlpe_" + secrets.token_urlsafe(32)
    return raw, token_hash(raw), raw[:12]


@transaction.atomic
def endpoint_create(
    *, project: Project, actor: User, name: str, slug: str = "", description: str = "", public: bool = False
) -> tuple[Endpoint, str]:
    """A new endpoint with no revision yet, and its token (shown once)."""
    name = name.strip()
    if not name:
        raise ValidationFailed("An endpoint needs a name.")
    slug = slug or slugify(name)[:50].strip("-")
    try:
        slug_validator(slug)
    except Exception as exc:
        raise ValidationFailed(f"Slug '{slug}': use 1-50 lowercase letters, digits and hyphens.") from exc
    raw, hashed, prefix = _new_token()
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(
                project=project,
                name=name[:120],
                slug=slug,
                description=description,
                public=public,
                token_hash=hashed,
                token_prefix=prefix,
                created_by=actor,
                policy=default_policy(),
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"An endpoint with the slug '{slug}' already exists.") from exc
    _bump_config()
    audit_record(
        actor=actor,
        action="endpoint.create",
        target=endpoint,
        project_id=project.pk,
        after=snapshot(endpoint, ENDPOINT_FIELDS),
    )
    _event(endpoint, "created", actor=actor)
    return endpoint, raw


@transaction.atomic
def endpoint_update(*, endpoint: Endpoint, actor: User, **changes: Any) -> Endpoint:
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValidationFailed(f"Unknown endpoint fields: {', '.join(sorted(unknown))}.")
    if "policy" in changes:
        changes["policy"] = _valid_policy(changes["policy"])
    if "payload_sample" in changes and not 0 <= float(changes["payload_sample"]) <= 1:
        raise ValidationFailed("payload_sample is a share between 0 and 1.")
    before = snapshot(endpoint, ENDPOINT_FIELDS)
    for key, value in changes.items():
        setattr(endpoint, key, value)
    endpoint.save(update_fields=[*changes, "updated_at"])
    _bump_config()
    audit_record(
        actor=actor,
        action="endpoint.update",
        target=endpoint,
        project_id=endpoint.project_id,
        before=before,
        after=snapshot(endpoint, ENDPOINT_FIELDS),
    )
    _event(endpoint, "settings_changed", actor=actor, data={"fields": sorted(changes)})
    return endpoint


def _valid_policy(policy: Any) -> dict:
    if not isinstance(policy, dict):
        raise ValidationFailed("policy must be an object.")
    merged = {**default_policy(), **policy}
    unknown = set(policy) - set(default_policy()) - {"offline_metric", "offline_higher_is_better", "canary_traffic"}
    if unknown:
        raise ValidationFailed(f"Unknown policy keys: {', '.join(sorted(unknown))}.")
    for key in ("max_error_rate", "max_p99_ms", "max_psi", "breach_seconds", "min_requests", "min_feedback"):
        if not isinstance(merged[key], (int, float)) or merged[key] < 0:
            raise ValidationFailed(f"policy.{key} must be a non-negative number.")
    for key in ("min_reference_rows", "promote_margin"):
        if not isinstance(merged[key], (int, float)) or isinstance(merged[key], bool) or merged[key] < 0:
            raise ValidationFailed(f"policy.{key} must be a non-negative number.")
    confidence = merged["confidence"]
    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) or not 0.5 <= confidence < 1:
        raise ValidationFailed("policy.confidence is a share between 0.5 and 1 (e.g. 0.95).")
    for key in ("kpi_rollback",):
        if not isinstance(merged[key], bool):
            raise ValidationFailed(f"policy.{key} is true or false.")
    if merged["kpi_metric"] not in monitoring.KPI_METRICS:
        raise ValidationFailed(f"policy.kpi_metric must be one of {sorted(monitoring.KPI_METRICS)}.")
    return merged


@transaction.atomic
def endpoint_token_rotate(*, endpoint: Endpoint, actor: User) -> str:
    raw, hashed, prefix = _new_token()
    endpoint.token_hash, endpoint.token_prefix = hashed, prefix
    endpoint.save(update_fields=["token_hash", "token_prefix", "updated_at"])
    _bump_config()
    audit_record(actor=actor, action="endpoint.token_rotate", target=endpoint, project_id=endpoint.project_id)
    _event(endpoint, "token_rotated", actor=actor)
    return raw


# -- revisions ----------------------------------------------------------------------
def _transition(revision: Revision, new: str, *, reason: str = "") -> bool:
    """Compare-and-set; False when another writer moved the revision first."""
    if new not in REVISION_TRANSITIONS[revision.status]:
        raise InvalidState(f"Revision {revision.number} is {revision.status}; it cannot become {new}.")
    moved = Revision.objects.filter(pk=revision.pk, status=revision.status).update(
        status=new, status_reason=reason[:2000]
    )
    if moved:
        revision.status, revision.status_reason = new, reason
    return bool(moved)


REFERENCE_MODES = ("auto", "burn_in", "none")
DEFAULT_BURN_IN_ROWS = 200


def reference_from_model_dir(model_dir: Path) -> dict:
    """A drift reference from the version's saved input example, when it has one."""
    meta = read_mlmodel(model_dir)
    example = (meta.get("saved_input_example_info") or {}).get("artifact_path")
    if not example or not (model_dir / example).is_file():
        return {}
    data = json.loads((model_dir / example).read_text())
    if isinstance(data, dict) and "columns" in data and "data" in data:
        columns = {str(c): [row[i] for row in data["data"]] for i, c in enumerate(data["columns"])}
        return monitoring.reference_capture(columns)
    return {}


def signature_names(model_dir: Path | str) -> list[str]:
    """The input column names of a saved model's signature ([] when it has none)."""
    return _signature_names(Path(model_dir))


def _signature_names(model_dir: Path) -> list[str]:
    try:
        inputs = (read_mlmodel(model_dir).get("signature") or {}).get("inputs")
        return [str(c["name"]) for c in json.loads(inputs or "[]") if "name" in c]
    except (ModelLoadError, ValueError, TypeError, KeyError):
        return []


def _reference(
    *,
    reference: dict[str, list] | str | None,
    info: links.VersionInfo,
    mode: str,
    burn_in_rows: int,
    min_rows: int,
    actor: User | None,
    project: Project,
) -> tuple[dict, str, int]:
    """(reference, where it came from, burn-in rows): explicit training values or a
    named stored reference (`dataset:<project>/<name>@<ref>`), else the run's training
    data (a dataset version's profile, else a logged file), else a sample saved at
    log_model (when it is big enough to mean anything), else the first live rows."""
    if mode not in REFERENCE_MODES:
        raise ValidationFailed(f"reference_mode is one of {', '.join(REFERENCE_MODES)}.")
    if not 10 <= burn_in_rows <= MAX_REFERENCE_ROWS:
        raise ValidationFailed(f"burn_in_rows is between 10 and {MAX_REFERENCE_ROWS}.")
    if isinstance(reference, str) and reference.strip():
        names = _signature_names(Path(info.model_dir))
        found = links.named_reference(user=actor, project=project, text=reference.strip(), names=names)
        return found[0], found[1], 0
    if reference:
        if not isinstance(reference, dict) or not all(isinstance(v, list) for v in reference.values()):
            raise ValidationFailed("reference must map feature names to lists of training values.")
        if any(len(v) > MAX_REFERENCE_ROWS for v in reference.values()):
            raise ValidationFailed(f"reference holds at most {MAX_REFERENCE_ROWS} values per feature.")
        return monitoring.reference_capture(reference), "training values sent at deploy", 0
    if mode == "none":
        return {}, "", 0
    if mode == "burn_in":
        return {}, f"burn-in: the first {burn_in_rows} live rows", burn_in_rows
    model_dir = Path(info.model_dir)
    stored = links.training_reference(info=info, names=_signature_names(model_dir))
    if stored is not None and monitoring.reference_usable(stored[0], min_rows):
        return stored[0], stored[1], 0
    found = links.training_columns(info=info, names=_signature_names(model_dir), max_rows=MAX_REFERENCE_ROWS)
    if found is not None and monitoring.reference_usable(monitoring.reference_capture(found[0]), min_rows):
        return monitoring.reference_capture(found[0]), found[1], 0
    try:
        sample = reference_from_model_dir(model_dir)
    except Exception:  # an unreadable example is no reference, not a failed deploy
        sample = {}
    if monitoring.reference_usable(sample, min_rows):
        return sample, "sample saved at log_model (input example)", 0
    return {}, f"burn-in: the first {burn_in_rows} live rows", burn_in_rows


@transaction.atomic
def revision_burn_in_capture(*, revision: Revision) -> Revision:
    """Freeze a burn-in revision's first live rows as its drift reference, once that
    many have been logged. Runs as the system (the policy check); idempotent."""
    if not revision.burn_in_rows or revision.reference:
        return revision
    columns, until = selectors.burn_in_rows(revision=revision, rows=revision.burn_in_rows)
    if until is None:
        return revision
    moved = Revision.objects.filter(pk=revision.pk, reference={}).update(
        reference=monitoring.reference_capture(columns), reference_until=until
    )
    if moved:
        revision.refresh_from_db()
        _event(
            revision.endpoint,
            "reference_captured",
            actor=None,
            revision=revision,
            automatic=True,
            reason=f"Drift reference of revision {revision.number}: its first {revision.burn_in_rows} live rows.",
            data={"rows": revision.burn_in_rows, "source": "burn-in"},
        )
    return revision


@transaction.atomic
def revision_deploy(
    *,
    endpoint: Endpoint,
    actor: User | None,
    model_name: str,
    version: object,
    role: str = "champion",
    traffic: float = 0.1,
    gate_override_reason: str = "",
    reference: dict[str, list] | str | None = None,
    reference_mode: str = "auto",
    burn_in_rows: int = DEFAULT_BURN_IN_ROWS,
    trusted: bool = False,
    automatic: bool = False,
    reason: str = "",
    version_info: links.VersionInfo | None = None,
) -> Revision:
    """Deploy a registered version as the champion, a canary or a shadow.

    Needs the project's production gate passed; a platform admin may override it with
    a reason (audited). `trusted` (pickle-based flavors) needs the owner role: the
    caller checks it. Automatic deploys (auto-canary) pass `version_info` themselves."""
    if role not in {"champion", ChallengerMode.CANARY, ChallengerMode.SHADOW}:
        raise ValidationFailed("role is champion, canary or shadow.")
    if not 0 <= float(traffic) <= 1:
        raise ValidationFailed("traffic is a share between 0 and 1.")
    info = version_info or links.version_resolve(user=actor, name=model_name, version=version)
    if info.project_id != endpoint.project_id:
        raise NotFound(f"Model Version (name={model_name}, version={version}) not found")
    project = endpoint.project
    gate_note = _check_gate(project=project, actor=actor, override_reason=gate_override_reason, automatic=automatic)
    model_dir = Path(info.model_dir)
    try:
        read_mlmodel(model_dir)
    except ModelLoadError as exc:
        raise ValidationFailed(f"This version has no MLflow model to serve: {exc}")
    number = (endpoint.revisions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    ref, ref_source, burn_in = _reference(
        reference=reference,
        info=info,
        mode=reference_mode,
        burn_in_rows=int(burn_in_rows),
        min_rows=int(endpoint.policy.get("min_reference_rows", monitoring.MIN_REFERENCE_ROWS)),
        actor=actor,
        project=project,
    )
    revision = Revision.objects.create(
        endpoint=endpoint,
        number=number,
        model_name=info.model_name,
        model_version_number=info.version,
        model_dir=str(model_dir),
        trusted=trusted,
        reference=ref,
        reference_source=ref_source,
        burn_in_rows=burn_in,
        offline_metric=_offline_metric(endpoint, info),
        offline_metric_name=endpoint.policy.get("offline_metric", ""),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    _link_version(revision, info)
    before = _routing(endpoint)
    if role == "champion":
        previous = endpoint.champion
        endpoint.champion = revision
        if endpoint.challenger_id:
            _retire(endpoint.challenger, reason="replaced by a new champion deploy")
            endpoint.challenger, endpoint.traffic = None, 0.0
    else:
        if endpoint.champion_id is None:
            raise InvalidState("Deploy a champion before a challenger.")
        if endpoint.challenger_id:
            _retire(endpoint.challenger, reason=f"replaced by revision {number}")
        endpoint.challenger, endpoint.challenger_mode = revision, role
        endpoint.traffic = float(traffic) if role == ChallengerMode.CANARY else 0.0
        previous = None
    _save_routing(endpoint, actor=actor, action="endpoint.deploy", before=before, reason=reason or gate_note)
    data = {
        "role": role,
        "model": info.model_name,
        "version": info.version,
        "replaces": previous.number if previous else None,
    }
    if role == ChallengerMode.CANARY:
        data["traffic"] = endpoint.traffic
    _event(
        endpoint, "deployed", actor=actor, revision=revision, reason=reason or gate_note, automatic=automatic, data=data
    )
    return revision


def _link_version(revision: Revision, info: links.VersionInfo) -> None:
    if info.obj is not None and hasattr(Revision, "model_version"):
        revision.model_version = info.obj
        revision.save(update_fields=["model_version"])


def _offline_metric(endpoint: Endpoint, info: links.VersionInfo) -> float | None:
    key = endpoint.policy.get("offline_metric")
    return info.metrics.get(key) if key else None


def _check_gate(*, project: Project, actor: User | None, override_reason: str, automatic: bool) -> str:
    if links.production_gate_passed(project=project):
        return ""
    if automatic:
        raise InvalidState("The project's production gate is not passed; no automatic deploy.")
    if not override_reason.strip():
        raise PermissionDenied(
            "The project has not passed its Production gate. A platform admin may override this with a reason."
        )
    if actor is None or not actor.is_admin:
        raise PermissionDenied("Only a platform admin may override the Production gate.")
    audit_record(
        actor=actor,
        action="gate.override",
        target=project,
        project_id=project.pk,
        reason=override_reason.strip(),
        after={"stage": "Production"},
    )
    return f"Production gate overridden by {actor.username}: {override_reason.strip()}"


def _retire(revision: Revision, *, reason: str) -> None:
    if revision.status in REVISION_TERMINAL_SAFE:
        return
    _transition(revision, RevisionStatus.RETIRED, reason=reason)


REVISION_TERMINAL_SAFE = {RevisionStatus.RETIRED, RevisionStatus.ROLLED_BACK, RevisionStatus.FAILED}


@transaction.atomic
def revision_report_load(*, revision_id: int, loaded: bool, error: str = "", loader: str = "") -> Revision | None:
    """A serving process loaded (or failed to load) a revision, with `loader` (which
    code path serves it). Runs as the system; idempotent, since every serving
    process reports, and a ready revision reloaded after its endpoint's fast path
    was switched reports its new loader."""
    revision = Revision.objects.select_related("endpoint").filter(pk=revision_id).first()
    if revision is not None and loaded and loader and revision.loader != loader:
        revision.loader = loader
        revision.save(update_fields=["loader", "updated_at"])
    if revision is None or revision.status != RevisionStatus.DEPLOYING:
        return revision
    endpoint = Endpoint.objects.select_for_update().get(pk=revision.endpoint_id)
    if loaded:
        if _transition(revision, RevisionStatus.READY, reason=error):
            _retire_replaced(endpoint, revision)
            audit_record(actor=None, action="revision.ready", target=revision, project_id=endpoint.project_id)
            _event(endpoint, "ready", actor=None, revision=revision)
        return revision
    if not _transition(revision, RevisionStatus.FAILED, reason=error):
        return revision
    before = _routing(endpoint)
    if endpoint.challenger_id == revision.pk:
        endpoint.challenger, endpoint.traffic = None, 0.0
    elif endpoint.champion_id == revision.pk:
        endpoint.champion = _previous_champion(endpoint, revision)
    _save_routing(endpoint, actor=None, action="revision.fail", before=before, reason=error[:500])
    _event(endpoint, "failed", actor=None, revision=revision, reason=error[:2000], automatic=True)
    return revision


def _retire_replaced(endpoint: Endpoint, revision: Revision) -> None:
    """The champion it replaced stops serving once the new one answers."""
    if endpoint.champion_id != revision.pk:
        return
    for old in endpoint.revisions.filter(status=RevisionStatus.READY).exclude(pk=revision.pk):
        if old.pk != endpoint.challenger_id:
            _transition(old, RevisionStatus.RETIRED, reason=f"replaced by revision {revision.number}")


def _previous_champion(endpoint: Endpoint, failed: Revision) -> Revision | None:
    return (
        endpoint.revisions.filter(status=RevisionStatus.READY, number__lt=failed.number)
        .exclude(pk=endpoint.challenger_id or 0)
        .order_by("-number")
        .first()
    )


@transaction.atomic
def drift_alert(*, endpoint: Endpoint, revision: Revision, reason: str) -> EndpointEvent:
    """A drifting champion: on the timeline and to the owners (runs as the system)."""
    audit_record(
        actor=None, action="endpoint.drift_alert", target=endpoint, project_id=endpoint.project_id, reason=reason
    )
    return _event(endpoint, "drift_alert", actor=None, revision=revision, reason=reason, automatic=True)


@transaction.atomic
def traffic_set(
    *, endpoint: Endpoint, actor: User | None, traffic: float, mode: str | None = None, reason: str = ""
) -> Endpoint:
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    if endpoint.challenger_id is None:
        raise InvalidState("The endpoint has no challenger to send traffic to.")
    if not 0 <= float(traffic) <= 1:
        raise ValidationFailed("traffic is a share between 0 and 1.")
    if mode is not None and mode not in ChallengerMode.values:
        raise ValidationFailed("mode is canary or shadow.")
    before = _routing(endpoint)
    endpoint.traffic = float(traffic)
    if mode is not None:
        endpoint.challenger_mode = mode
    _save_routing(endpoint, actor=actor, action="endpoint.traffic", before=before, reason=reason)
    _event(
        endpoint,
        "traffic_changed",
        actor=actor,
        revision=endpoint.challenger,
        reason=reason,
        data={"traffic": endpoint.traffic, "mode": endpoint.challenger_mode},
    )
    return endpoint


def _check_still_challenger(endpoint: Endpoint, revision_number: int | None, verb: str) -> None:
    if revision_number is None or (endpoint.challenger and endpoint.challenger.number == revision_number):
        return
    seen = endpoint.revisions.filter(number=revision_number).first()
    if seen is None:
        raise NotFound(f"Revision {revision_number} not found.")
    state = {
        RevisionStatus.ROLLED_BACK: "already rolled back",
        RevisionStatus.RETIRED: "already retired",
        RevisionStatus.FAILED: "failed",
    }.get(seen.status, "no longer the challenger")
    if endpoint.champion_id == seen.pk:
        state = "already the champion"
    raise InvalidState(f"Cannot {verb} revision {revision_number}: it is {state}. Reload to see the current state.")


@transaction.atomic
def challenger_promote(
    *,
    endpoint: Endpoint,
    actor: User | None,
    reason: str = "",
    automatic: bool = False,
    revision_number: int | None = None,
    data: dict | None = None,
) -> Endpoint:
    """`revision_number`: the challenger the caller saw (a page may be stale); refused
    with that revision's actual state when it is no longer the challenger."""
    endpoint = (
        Endpoint.objects.select_for_update(of=("self",)).select_related("champion", "challenger").get(pk=endpoint.pk)
    )
    _check_still_challenger(endpoint, revision_number, "promote")
    challenger = endpoint.challenger
    if challenger is None:
        raise InvalidState("The endpoint has no challenger to promote.")
    if challenger.status != RevisionStatus.READY:
        raise InvalidState(f"Revision {challenger.number} is {challenger.status}; only a ready challenger is promoted.")
    before = _routing(endpoint)
    old = endpoint.champion
    endpoint.champion, endpoint.challenger, endpoint.traffic = challenger, None, 0.0
    if old is not None:
        _retire(old, reason=f"replaced by revision {challenger.number}")
    _save_routing(endpoint, actor=actor, action="endpoint.promote", before=before, reason=reason)
    _event(endpoint, "promoted", actor=actor, revision=challenger, reason=reason, automatic=automatic, data=data)
    return endpoint


@transaction.atomic
def challenger_rollback(
    *,
    endpoint: Endpoint,
    actor: User | None,
    reason: str = "",
    automatic: bool = False,
    revision_number: int | None = None,
    data: dict | None = None,
) -> Endpoint:
    """Take the challenger out of traffic; it ends `rolled_back`."""
    endpoint = (
        Endpoint.objects.select_for_update(of=("self",)).select_related("champion", "challenger").get(pk=endpoint.pk)
    )
    _check_still_challenger(endpoint, revision_number, "roll back")
    challenger = endpoint.challenger
    if challenger is None:
        raise InvalidState("The endpoint has no challenger to roll back.")
    before = _routing(endpoint)
    endpoint.challenger, endpoint.traffic = None, 0.0
    if challenger.status in (RevisionStatus.READY, RevisionStatus.DEPLOYING):
        target = RevisionStatus.ROLLED_BACK if challenger.status == RevisionStatus.READY else RevisionStatus.RETIRED
        _transition(challenger, target, reason=reason)
    _save_routing(endpoint, actor=actor, action="endpoint.rollback", before=before, reason=reason)
    _event(endpoint, "rolled_back", actor=actor, revision=challenger, reason=reason, automatic=automatic, data=data)
    return endpoint


@transaction.atomic
def champion_rollback(*, endpoint: Endpoint, actor: User | None, reason: str = "") -> Endpoint:
    """Serve the previous champion again: a new revision of the same version (the
    history stays append-only), the current champion ends `rolled_back`."""
    endpoint = Endpoint.objects.select_for_update(of=("self",)).select_related("champion").get(pk=endpoint.pk)
    current = endpoint.champion
    if current is None:
        raise InvalidState("The endpoint has no champion to roll back.")
    previous = (
        endpoint.revisions.filter(number__lt=current.number, status__in=[RevisionStatus.RETIRED, RevisionStatus.READY])
        .exclude(pk=endpoint.challenger_id or 0)
        .order_by("-number")
        .first()
    )
    if previous is None:
        raise InvalidState("There is no earlier revision to roll back to.")
    number = endpoint.revisions.order_by("-number").values_list("number", flat=True).first() + 1
    restored = Revision.objects.create(
        endpoint=endpoint,
        number=number,
        model_name=previous.model_name,
        model_version_number=previous.model_version_number,
        model_dir=previous.model_dir,
        trusted=previous.trusted,
        reference=previous.reference,
        reference_source=previous.reference_source,
        reference_until=previous.reference_until,
        burn_in_rows=previous.burn_in_rows,
        offline_metric=previous.offline_metric,
        offline_metric_name=previous.offline_metric_name,
        created_by=actor,
    )
    if hasattr(Revision, "model_version_id"):
        restored.model_version_id = previous.model_version_id
        restored.save(update_fields=["model_version"])
    before = _routing(endpoint)
    endpoint.champion = restored
    if current.status in (RevisionStatus.READY,):
        _transition(current, RevisionStatus.ROLLED_BACK, reason=reason)
    _save_routing(endpoint, actor=actor, action="endpoint.rollback", before=before, reason=reason)
    _event(
        endpoint,
        "rolled_back",
        actor=actor,
        revision=current,
        reason=reason or f"back to revision {previous.number}",
        data={"restored": number, "from": previous.number},
    )
    return endpoint
