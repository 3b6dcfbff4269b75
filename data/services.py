"""Writes of the data app: streams, their ingest tokens, the quarantine's release.

The records themselves are written by the ingest processes (data.plane, data.mqtt);
what a person does to a stream goes through here, audited."""

from collections.abc import Iterable
import secrets as std_secrets
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
import orjson
from paho.mqtt.client import topic_matches_sub

from data import schema as schemas
from data import secrets
from data.archive import ArchiveUnavailable, Limits, LocalArchiveStore, StreamLog
from data.models import IngestToken, QuarantinedRecord, QuarantineStatus, SourceKind, Stream, StreamStatus
from mlplatform.audit import audit_record, snapshot
from mlplatform.errors import AlreadyExists, ApplicationError, InvalidState, ValidationFailed
from mlplatform.models import User
from mlplatform.tokens import hash_key
from projects.models import Project, slug_validator

STREAM_FIELDS = [
    "name",
    "slug",
    "description",
    "source",
    "status",
    "schema",
    "retention_days",
    "mqtt_url",
    "mqtt_topics",
    "mqtt_username",
    "score_endpoint",
]
TOKEN_PREFIX = "mlpi_"


class ArchiveDown(ApplicationError):
    status_code = 503
    code = "archive_unavailable"


# --- streams ------------------------------------------------------------------------------


def _clean_slug(slug: str, name: str) -> str:
    slug = slug or slugify(name)[:50].strip("-")
    try:
        slug_validator(slug)
    except Exception as exc:
        raise ValidationFailed(f"Slug '{slug}': use 1-50 lowercase letters, digits and hyphens.") from exc
    return slug


def _check_schema(schema: dict | None) -> None:
    try:
        schemas.compile_schema(schema)
    except schemas.SchemaInvalid as exc:
        raise ValidationFailed(str(exc)) from exc


def _check_mqtt(*, source: str, url: str, topics: list[str]) -> None:
    if source != SourceKind.MQTT:
        return
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
        raise ValidationFailed("An MQTT stream needs a broker URL such as mqtt://127.0.0.1:1883 (mqtts:// for TLS).")
    if not topics or not all(isinstance(t, str) and t.strip() for t in topics):
        raise ValidationFailed("An MQTT stream needs at least one topic pattern, such as 'sensors/+/reading'.")
    for topic in topics:
        try:
            topic_matches_sub(topic, "x")
        except ValueError as exc:
            raise ValidationFailed(f"Topic pattern {topic!r} is not valid MQTT: {exc}") from exc
        if "#" in topic[:-1] or any(len(level) > 1 and ("+" in level or "#" in level) for level in topic.split("/")):
            raise ValidationFailed(f"Topic pattern {topic!r}: '+' and '#' stand alone in a level, '#' only last.")


@transaction.atomic
def stream_create(
    *,
    project: Project,
    actor: User | None,
    name: str,
    slug: str = "",
    description: str = "",
    source: str = SourceKind.HTTP,
    schema: dict | None = None,
    retention_days: int = 0,
    mqtt_url: str = "",
    mqtt_topics: list[str] | None = None,
    mqtt_username: str = "",
    mqtt_password: str = "",
    score_endpoint: str = "",
    score_token: str = "",
) -> Stream:
    """A new stream (no token yet: create one with ingest_token_create). The caller
    holds the data scientist role in `project`."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A stream needs a name.")
    slug = _clean_slug(slug, name)
    if source not in SourceKind.values:
        raise ValidationFailed(f"Source must be one of {', '.join(SourceKind.values)}.")
    _check_schema(schema)
    topics = [t.strip() for t in (mqtt_topics or [])]
    _check_mqtt(source=source, url=mqtt_url, topics=topics)
    try:
        with transaction.atomic():
            stream = Stream.objects.create(
                project=project,
                name=name[:120],
                slug=slug,
                description=description,
                source=source,
                schema=schema,
                retention_days=retention_days,
                mqtt_url=mqtt_url,
                mqtt_topics=topics,
                mqtt_username=mqtt_username,
                mqtt_password=secrets.encrypt(mqtt_password),
                score_endpoint=score_endpoint,
                score_token=secrets.encrypt(score_token),
                created_by=actor,
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"A stream with the slug '{slug}' already exists in this project.") from exc
    audit_record(
        actor=actor, action="stream.create", target=stream, project_id=project.pk, after=snapshot(stream, STREAM_FIELDS)
    )
    return stream


@transaction.atomic
def stream_update(*, stream: Stream, actor: User, **changes) -> Stream:
    """Changes name, description, status, schema (a new schema is no longer 'inferred'),
    retention, MQTT settings (a password given replaces the stored one) or the scoring
    endpoint. The slug stays: it names the stream's archive and its ingest URL."""
    allowed = set(STREAM_FIELDS) - {"slug", "source"} | {"mqtt_password", "score_token"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(f"These cannot be changed: {', '.join(sorted(unknown))}.")
    before = snapshot(stream, STREAM_FIELDS)
    if "schema" in changes:
        _check_schema(changes["schema"])
        stream.schema_inferred = False
    if "status" in changes and changes["status"] not in StreamStatus.values:
        raise ValidationFailed(f"Status must be one of {', '.join(StreamStatus.values)}.")
    if "name" in changes and not str(changes["name"]).strip():
        raise ValidationFailed("A stream needs a name.")
    for secret in ("mqtt_password", "score_token"):
        if secret in changes:
            changes[secret] = secrets.encrypt(changes[secret])
    if "mqtt_topics" in changes:
        changes["mqtt_topics"] = [t.strip() for t in changes["mqtt_topics"]]
    _check_mqtt(
        source=stream.source,
        url=changes.get("mqtt_url", stream.mqtt_url),
        topics=changes.get("mqtt_topics", stream.mqtt_topics),
    )
    for name, value in changes.items():
        setattr(stream, name, value)
    stream.save(update_fields=[*changes, "schema_inferred"])
    audit_record(
        actor=actor,
        action="stream.update",
        target=stream,
        project_id=stream.project_id,
        before=before,
        after=snapshot(stream, STREAM_FIELDS),
    )
    return stream


# --- ingest tokens -------------------------------------------------------------------------


@transaction.atomic
def ingest_token_create(*, stream: Stream, actor: User, name: str = "") -> tuple[IngestToken, str]:
    """A token that may write to `stream` only; the raw value is returned once."""
    raw = TOKEN_PREFIX + std_secrets.token_urlsafe(30)
    token = IngestToken.objects.create(
        stream=stream,
        name=(name.strip() or "ingest")[:120],
        prefix=raw[:12],
        key_hash=hash_key(raw),
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action="stream.token_create",
        target=token,
        project_id=stream.project_id,
        after={"stream": stream.pk, "name": token.name, "prefix": token.prefix},
    )
    return token, raw


@transaction.atomic
def ingest_token_revoke(*, token: IngestToken, actor: User) -> IngestToken:
    """Revoked tokens stop working within the ingest processes' poll interval."""
    updated = IngestToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if not updated:
        raise InvalidState("This token is already revoked.")
    token.refresh_from_db(fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="stream.token_revoke",
        target=token,
        project_id=token.stream.project_id,
        before={"revoked_at": None},
        after={"revoked_at": token.revoked_at.isoformat()},
    )
    return token


# --- the quarantine --------------------------------------------------------------------------

_logs: dict[str, StreamLog] = {}
_logs_lock = threading.Lock()


def stream_log(stream: Stream) -> StreamLog:
    """This process's appender for a stream (other processes append beside it safely:
    the archive takes a file lock per append)."""
    key = f"{stream.project.slug}/{stream.slug}"
    with _logs_lock:
        log = _logs.get(key)
        if log is None or str(log.store.root) != str(settings.DATA_ARCHIVE_DIR):
            log = _logs[key] = StreamLog(
                LocalArchiveStore(settings.DATA_ARCHIVE_DIR),
                key,
                limits=Limits(
                    records=settings.INGEST_SEAL_RECORDS,
                    bytes=settings.INGEST_SEAL_BYTES,
                    seconds=settings.INGEST_SEAL_SECONDS,
                    dedup_window=settings.INGEST_DEDUP_WINDOW,
                ),
                on_seal=lambda segment, stream_id=stream.pk: _index_sealed(stream_id, segment),
            )
    return log


def _index_sealed(stream_id: int, segment) -> None:
    from data.source import segment_index

    segment_index([(stream_id, segment)])


def quarantine_release(*, stream: Stream, actor: User, ids: Iterable[int] | None = None) -> tuple[int, int]:
    """Releases held records that fit the stream's schema now (fix the schema first):
    they are appended to the archive (key `q:<id>`, so releasing twice archives once)
    and marked released with their sequence number. Returns (released, still held).
    Records that still do not fit stay held, with the new reason."""
    held = QuarantinedRecord.objects.filter(stream=stream, status=QuarantineStatus.HELD).order_by("id")
    if ids is not None:
        held = held.filter(pk__in=list(ids))
    held = list(held[:10_000])
    validator = schemas.compile_schema(stream.schema)
    fitting, still = [], []
    for record in held:
        reason = schemas.check(validator, record.payload) if not record.raw else "not JSON; cannot be released"
        (still if reason else fitting).append((record, reason))
    if fitting:
        _archive_released(stream, actor, [r for r, _ in fitting])
    for record, reason in still:
        if reason != record.reason:
            record.reason = reason
            record.save(update_fields=["reason"])
    return len(fitting), len(still)


def _archive_released(stream: Stream, actor: User, records: list[QuarantinedRecord]) -> None:
    log = stream_log(stream)
    try:
        result = log.append_sync([(orjson.dumps(r.payload), f"q:{r.pk}") for r in records])
    except ArchiveUnavailable as exc:
        raise ArchiveDown(f"The archive cannot be written right now ({exc}); nothing was released.") from exc
    now = timezone.now()
    with transaction.atomic():
        # Records archived by an earlier, interrupted release come back as duplicates:
        # then which got which number is not known, and none is recorded.
        numbered = result.accepted == len(records)
        for offset, record in enumerate(records):
            record.status, record.released_at = QuarantineStatus.RELEASED, now
            record.released_seq = result.first_seq + offset if numbered else None
        QuarantinedRecord.objects.bulk_update(records, ["status", "released_at", "released_seq"])
        Stream.objects.filter(pk=stream.pk).update(
            records_total=F("records_total") + result.accepted, last_record_at=now
        )
        audit_record(
            actor=actor,
            action="stream.quarantine_release",
            target=stream,
            project_id=stream.project_id,
            after={"released": len(records), "first_seq": result.first_seq, "last_seq": result.last_seq},
        )
