"""Writes of datasets and their versions. Callers have checked the actor's role
(data scientist to create versions, alias and tag; owner to delete; see selectors)."""

import datetime as dt
from pathlib import Path
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from data.datasets import manifest as mf
from data.datasets import reader, storage
from data.models import (
    DataFile,
    Dataset,
    DatasetAlias,
    DatasetVersion,
    DatasetVersionTag,
    ProfileStatus,
    Segment,
    Stream,
    VersionSource,
    VersionStatus,
)
from data.models_datasets import NAME_PATTERN
from mlplatform.audit import audit_record
from mlplatform.errors import AlreadyExists, InvalidState, NotFound, ValidationFailed
from mlplatform.models import User
from projects.models import Project

_NAME_RE = re.compile(NAME_PATTERN)
_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_TAG_VALUE = 5000


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME_RE.match(name):
        raise ValidationFailed(
            f"Invalid dataset name '{name[:100]}': 1-100 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit."
        )
    return name


@transaction.atomic
def dataset_create(*, project: Project, name: str, user: User | None, description: str = "") -> Dataset:
    name = _clean_name(name)
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(project=project, name=name, description=description, created_by=user)
    except IntegrityError as exc:
        raise AlreadyExists(f"Dataset '{name}' already exists in project '{project.slug}'.") from exc
    audit_record(actor=user, action="dataset.create", target=dataset, project_id=project.pk, after={"name": name})
    return dataset


def dataset_get_or_create(*, project: Project, name: str, user: User | None) -> Dataset:
    existing = Dataset.objects.filter(project=project, name=_clean_name(name)).first()
    return existing or dataset_create(project=project, name=name, user=user)


@transaction.atomic
def dataset_delete(*, dataset: Dataset, user: User | None) -> None:
    audit_record(
        actor=user,
        action="dataset.delete",
        target=dataset,
        project_id=dataset.project_id,
        before={"name": dataset.name, "versions": dataset.versions.count()},
    )
    dataset.delete()


# --- versions --------------------------------------------------------------------------


@transaction.atomic
def version_create(
    *,
    dataset: Dataset,
    manifest: dict[str, Any],
    source: str,
    user: User | None,
    source_detail: dict | None = None,
    description: str = "",
) -> tuple[DatasetVersion, bool]:
    """The version of `manifest` in `dataset`: a new one, or the existing one with the
    same id (same data, same id). Every part must be stored now; the row count is the
    manifest's (a filtered manifest is counted by a scan)."""
    mf.validate(manifest)
    digest = mf.digest(manifest)
    existing = DatasetVersion.objects.filter(dataset=dataset, digest=digest).first()
    if existing is not None:
        return existing, False
    missing = reader.missing_parts(manifest)
    if missing:
        raise ValidationFailed(f"The manifest names parts that are not stored: {'; '.join(missing[:3])}.")
    _check_ranges(manifest)
    schema = _known_schema(manifest)
    rows = mf.row_count(manifest) if not manifest.get("filter") else None
    version = DatasetVersion(
        dataset=dataset,
        digest=digest,
        manifest=manifest,
        source=source,
        source_detail=source_detail or {},
        rows=rows or 0,
        bytes=_bytes(manifest),
        schema=schema,
        description=description,
        created_by=user,
    )
    if rows is None:
        version.rows = sum(b.num_rows for b in reader.iter_batches(version))
    try:
        with transaction.atomic():
            version.save()
    except IntegrityError:  # made at the same moment by another request: the same version
        return DatasetVersion.objects.get(dataset=dataset, digest=digest), False
    audit_record(
        actor=user,
        action="dataset_version.create",
        target=version,
        project_id=dataset.project_id,
        after={"digest": digest, "source": source, "rows": version.rows},
    )
    transaction.on_commit(lambda: _enqueue_profile(version.pk))
    return version, True


def _enqueue_profile(version_id: int) -> None:
    from data.datasets.tasks import dataset_version_profile_task

    dataset_version_profile_task.apply_async(args=[version_id], queue="default")


def _check_ranges(manifest: dict[str, Any]) -> None:
    for part in manifest["parts"]:
        stop = part["rows"][1]
        if part["kind"] == "file":
            available = DataFile.objects.filter(sha256=part["sha256"]).values_list("rows", flat=True).first()
        else:
            available = Segment.objects.filter(sha256=part["sha256"]).values_list("records", flat=True).first()
        if available is not None and stop > available:
            raise ValidationFailed(f"Part {part['sha256'][:12]} has {available} rows; the range ends at {stop}.")


def _known_schema(manifest: dict[str, Any]) -> dict:
    """Files carry their schema, so a version of files knows its own at once; one with
    segments learns it when profiled (a scan)."""
    if any(p["kind"] != "file" for p in manifest["parts"]):
        return {}
    raw = reader.raw_schema(manifest)
    columns = manifest.get("columns")
    unknown = [c for c in columns or [] if c not in raw.names]
    if unknown:
        raise ValidationFailed(f"Unknown columns in the projection: {', '.join(unknown[:5])}.")
    return reader.schema_record(raw, columns)


def _bytes(manifest: dict[str, Any]) -> int:
    total = 0
    for part in manifest["parts"]:
        model = DataFile if part["kind"] == "file" else Segment
        size = model.objects.filter(sha256=part["sha256"]).values_list("bytes", flat=True).first() or 0
        rows = (
            DataFile.objects.filter(sha256=part["sha256"]).values_list("rows", flat=True).first()
            if part["kind"] == "file"
            else Segment.objects.filter(sha256=part["sha256"]).values_list("records", flat=True).first()
        ) or 1
        total += size * (part["rows"][1] - part["rows"][0]) // max(rows, 1)
    return total


def version_from_upload(
    *,
    project: Project,
    name: str,
    path: Path,
    filename: str,
    user: User | None,
    fmt: str = "",
    description: str = "",
) -> tuple[DatasetVersion, bool]:
    """Converts the uploaded file (already on disk) and makes a version of it. The file
    is stored before the transaction: a failed conversion stores nothing, and a file
    left without a version is what the garbage collector removes."""
    fmt = storage.detect_format(filename, fmt)
    _clean_name(name)
    stored = storage.store_upload(path, fmt)
    with transaction.atomic():
        DataFile.objects.get_or_create(
            sha256=stored.sha256,
            defaults={"path": stored.path, "rows": stored.rows, "bytes": stored.bytes, "schema": stored.schema},
        )
        dataset = dataset_get_or_create(project=project, name=name, user=user)
        manifest = mf.build([mf.part("file", stored.sha256, 0, stored.rows)])
        detail = {"filename": Path(filename or "").name[:200], "format": fmt}
        return version_create(
            dataset=dataset,
            manifest=manifest,
            source=VersionSource.UPLOAD,
            source_detail=detail,
            user=user,
            description=description,
        )


def version_from_manifest(
    *, project: Project, name: str, manifest: dict[str, Any], user: User | None, description: str = ""
) -> tuple[DatasetVersion, bool]:
    """A version from an explicit manifest (a job's output, a hand-made selection). Its
    parts must already belong to the project: segments of its streams, files of its
    versions. Content stored for another project is "not stored" here, as if unknown."""
    mf.validate(manifest)
    foreign = [p["sha256"][:12] for p in manifest["parts"] if not _part_in_project(project, p)]
    if foreign:
        raise ValidationFailed(f"The manifest names parts that are not stored: {', '.join(foreign[:3])}.")
    with transaction.atomic():
        dataset = dataset_get_or_create(project=project, name=name, user=user)
        return version_create(
            dataset=dataset, manifest=manifest, source=VersionSource.JOB, user=user, description=description
        )


def _part_in_project(project: Project, part: dict[str, Any]) -> bool:
    if part["kind"] == "segment":
        return Segment.objects.filter(sha256=part["sha256"], stream__project=project).exists()
    manifests = DatasetVersion.objects.filter(dataset__project=project).values_list("manifest", flat=True)
    return any(p["sha256"] == part["sha256"] for m in manifests.iterator() for p in m["parts"])


def version_from_stream(
    *,
    project: Project,
    name: str,
    stream: Stream,
    user: User | None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    since_last: bool = False,
    description: str = "",
) -> tuple[DatasetVersion, bool]:
    """A version over the stream's sealed segments: the records ingested in
    [start, end), or every record after the last version made from this stream."""
    if stream.project_id != project.pk:
        raise NotFound("Stream not found.")
    if since_last and (start or end):
        raise ValidationFailed("Give either a time range or since_last, not both.")
    if start and end and start >= end:
        raise ValidationFailed("The window's start must be before its end.")
    with transaction.atomic():
        dataset = dataset_get_or_create(project=project, name=name, user=user)
        after_seq = _last_stream_seq(dataset, stream) if since_last else -1
        parts, first_seq, last_seq = _window_parts(stream, start, end, after_seq)
        if not parts:
            raise ValidationFailed("The window holds no archived (sealed) records of this stream.")
        detail = {
            "stream": stream.slug,
            "stream_id": stream.pk,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "since_last": since_last,
            "first_seq": first_seq,
            "last_seq": last_seq,
        }
        return version_create(
            dataset=dataset,
            manifest=mf.build(parts),
            source=VersionSource.STREAM,
            source_detail=detail,
            user=user,
            description=description,
        )


def _last_stream_seq(dataset: Dataset, stream: Stream) -> int:
    last = -1
    for detail in DatasetVersion.objects.filter(dataset=dataset, source=VersionSource.STREAM).values_list(
        "source_detail", flat=True
    ):
        if detail.get("stream_id") == stream.pk and detail.get("last_seq") is not None:
            last = max(last, int(detail["last_seq"]))
    return last


def _window_parts(
    stream: Stream, start: dt.datetime | None, end: dt.datetime | None, after_seq: int
) -> tuple[list[dict], int | None, int | None]:
    segments = Segment.objects.filter(stream=stream, last_seq__gt=after_seq).order_by("first_seq")
    if start:
        segments = segments.filter(last_at__gte=start)
    if end:
        segments = segments.filter(first_at__lt=end)
    parts, first_seq, last_seq = [], None, None
    for segment in segments:
        lo, hi = _row_range(segment, start, end, after_seq)
        if hi > lo:
            parts.append(mf.part("segment", segment.sha256, lo, hi))
            first_seq = segment.first_seq + lo if first_seq is None else first_seq
            last_seq = segment.first_seq + hi - 1
    return parts, first_seq, last_seq


def _row_range(segment: Segment, start: dt.datetime | None, end: dt.datetime | None, after_seq: int) -> tuple[int, int]:
    """Rows of the segment inside the window. A segment wholly inside needs no read;
    an edge one is scanned for its ingest times (lines are in ingest order)."""
    lo = max(0, after_seq + 1 - segment.first_seq)
    hi = segment.records
    inside = (not start or segment.first_at >= start) and (not end or segment.last_at < end)
    if inside:
        return lo, hi
    start_ms = int(start.timestamp() * 1000) if start else None
    end_ms = int(end.timestamp() * 1000) if end else None
    times = _line_times(segment)
    if start_ms is not None:
        lo = max(lo, next((i for i, t in enumerate(times) if t >= start_ms), len(times)))
    if end_ms is not None:
        hi = next((i for i, t in enumerate(times) if t >= end_ms), len(times))
    return lo, hi


def _line_times(segment: Segment) -> list[int]:
    import orjson

    with open(reader.archive_store().local_path(segment.path), "rb") as handle:
        return [orjson.loads(line)["t"] for line in handle]


@transaction.atomic
def version_mark_broken(*, version: DatasetVersion, reason: str) -> DatasetVersion:
    """A version whose parts are gone is broken, never silently shortened."""
    moved = DatasetVersion.objects.filter(pk=version.pk, status=VersionStatus.READY).update(
        status=VersionStatus.BROKEN, status_message=reason[:500]
    )
    if moved:
        version.status, version.status_message = VersionStatus.BROKEN, reason[:500]
        audit_record(
            actor=None,
            action="dataset_version.broken",
            target=version,
            project_id=version.dataset.project_id,
            before={"status": VersionStatus.READY},
            after={"status": VersionStatus.BROKEN},
            reason=reason[:500],
        )
    return version


def version_check(*, version: DatasetVersion) -> DatasetVersion:
    missing = reader.missing_parts(version.manifest)
    if missing:
        return version_mark_broken(version=version, reason="; ".join(missing[:3]))
    return version


@transaction.atomic
def version_delete(*, version: DatasetVersion, user: User | None) -> None:
    audit_record(
        actor=user,
        action="dataset_version.delete",
        target=version,
        project_id=version.dataset.project_id,
        before={"digest": version.digest, "aliases": sorted(a.alias for a in version.aliases.all())},
    )
    version.delete()


@transaction.atomic
def version_profile_save(*, version_id: int, profile: dict | None, schema: dict | None, error: str = "") -> None:
    """Stores a computed profile (and the schema the scan learnt), or why it failed."""
    fields: dict[str, Any] = {"profiled_at": timezone.now()}
    if error:
        fields.update(profile_status=ProfileStatus.FAILED, profile_message=error[:500])
    else:
        fields.update(profile_status=ProfileStatus.READY, profile=profile, profile_message="")
    if schema:
        fields["schema"] = schema
    DatasetVersion.objects.filter(pk=version_id).update(**fields)


# --- aliases and tags ----------------------------------------------------------------------


def _clean_alias(alias: str) -> str:
    alias = (alias or "").strip().lstrip("@")
    if not _ALIAS_RE.match(alias):
        raise ValidationFailed(
            f"Invalid alias '{alias[:64]}': a lowercase letter, then up to 62 letters, digits, '-' or '_'."
        )
    if alias == "latest":
        raise ValidationFailed("'latest' always means the newest version; it cannot be set.")
    return alias


@transaction.atomic
def alias_set(*, dataset: Dataset, alias: str, version: DatasetVersion, user: User | None) -> DatasetAlias:
    alias = _clean_alias(alias)
    if version.dataset_id != dataset.pk:
        raise NotFound("Dataset version not found.")
    if version.status == VersionStatus.BROKEN:
        raise InvalidState("A broken version cannot get an alias: its data is no longer all stored.")
    before = DatasetAlias.objects.filter(dataset=dataset, alias=alias).values_list("version__digest", flat=True).first()
    link, _ = DatasetAlias.objects.update_or_create(dataset=dataset, alias=alias, defaults={"version": version})
    audit_record(
        actor=user,
        action="dataset_alias.set",
        target=dataset,
        project_id=dataset.project_id,
        before={"alias": alias, "version": before} if before else None,
        after={"alias": alias, "version": version.digest},
    )
    return link


@transaction.atomic
def alias_delete(*, dataset: Dataset, alias: str, user: User | None) -> None:
    link = DatasetAlias.objects.filter(dataset=dataset, alias=alias).select_related("version").first()
    if link is None:
        raise NotFound(f"Dataset '{dataset.name}' has no alias '{alias}'.")
    audit_record(
        actor=user,
        action="dataset_alias.delete",
        target=dataset,
        project_id=dataset.project_id,
        before={"alias": alias, "version": link.version.digest},
    )
    link.delete()


@transaction.atomic
def tag_set(*, version: DatasetVersion, key: str, value: str, user: User | None) -> DatasetVersionTag:
    key = (key or "").strip()
    if not key or len(key) > 250:
        raise ValidationFailed("A tag key is 1-250 characters.")
    if len(value or "") > MAX_TAG_VALUE:
        raise ValidationFailed(f"A tag value is at most {MAX_TAG_VALUE} characters.")
    before = DatasetVersionTag.objects.filter(version=version, key=key).values_list("value", flat=True).first()
    tag, _ = DatasetVersionTag.objects.update_or_create(version=version, key=key, defaults={"value": value or ""})
    audit_record(
        actor=user,
        action="dataset_version.tag_set",
        target=version,
        project_id=version.dataset.project_id,
        before={key: before} if before is not None else None,
        after={key: tag.value},
    )
    return tag


@transaction.atomic
def tag_delete(*, version: DatasetVersion, key: str, user: User | None) -> None:
    tag = DatasetVersionTag.objects.filter(version=version, key=key).first()
    if tag is None:
        raise NotFound(f"The version has no tag '{key}'.")
    audit_record(
        actor=user,
        action="dataset_version.tag_delete",
        target=version,
        project_id=version.dataset.project_id,
        before={key: tag.value},
    )
    tag.delete()


def segment_referenced(segment: Segment) -> bool:
    """Whether a dataset version of the segment's project names it: stream retention
    keeps such a segment (registered in DataConfig.ready as a retention guard)."""
    return DatasetVersion.objects.filter(
        dataset__project_id=segment.stream.project_id, manifest__icontains=segment.sha256
    ).exists()
