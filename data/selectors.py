"""Reads of the data app, filtered by what the asking user may see (projects' rule)."""

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from data.models import IngestToken, QuarantinedRecord, QuarantineStatus, Segment, Stream
from mlplatform.errors import NotFound
from mlplatform.models import User
from mlplatform.roles import Role
from projects.selectors import project_check, project_get, project_visible_ids


def stream_list(*, user: User, project_slug: str | None = None) -> QuerySet[Stream]:
    streams = Stream.objects.select_related("project").filter(project__in=project_visible_ids(user=user))
    if project_slug is not None:
        project = project_get(user=user, slug=project_slug)
        streams = streams.filter(project=project)
    return streams.order_by("project__name", "name")


def stream_get(*, user: User, project_slug: str, slug: str, min_role: str = Role.VIEWER) -> Stream:
    """The stream if the user may see its project (NotFound otherwise, the same for a
    project they cannot see); PermissionDenied without `min_role` there."""
    stream = Stream.objects.select_related("project").filter(project__slug=project_slug, slug=slug).first()
    if stream is None:
        project_get(user=user, slug=project_slug)  # a hidden project answers as not found
        raise NotFound(f"No stream '{slug}' in project '{project_slug}'.")
    project_check(user=user, project=stream.project, min_role=min_role)
    return stream


def token_list(*, stream: Stream) -> QuerySet[IngestToken]:
    return stream.tokens.select_related("created_by").order_by("-created_at")


def token_get(*, stream: Stream, token_id: int) -> IngestToken:
    token = stream.tokens.select_related("stream").filter(pk=token_id).first()
    if token is None:
        raise NotFound("No such token on this stream.")
    return token


def quarantine_list(*, stream: Stream, status: str = QuarantineStatus.HELD) -> QuerySet[QuarantinedRecord]:
    return QuarantinedRecord.objects.filter(stream=stream, status=status).order_by("-id")


def quarantine_held_count(*, stream: Stream) -> int:
    return QuarantinedRecord.objects.filter(stream=stream, status=QuarantineStatus.HELD).count()


def segment_list(*, stream: Stream) -> QuerySet[Segment]:
    return Segment.objects.filter(stream=stream).order_by("first_seq")


def rate_series(*, stream_ids: list[int], minutes: int = 10) -> dict[int, list[tuple[float, float]]]:
    """Records per second in 5-second buckets over the last `minutes`, per stream, as
    (unix time, rate) pairs; zero where nothing came (from data.source's counters)."""
    from data.source import RATE_BUCKET_SECONDS, rate_key

    now = int(timezone.now().timestamp()) // RATE_BUCKET_SECONDS
    buckets = list(range(now - minutes * 60 // RATE_BUCKET_SECONDS, now + 1))
    keys = {rate_key(s, b): (s, b) for s in stream_ids for b in buckets}
    found = cache.get_many(list(keys))
    series: dict[int, list[tuple[float, float]]] = {s: [] for s in stream_ids}
    for key, (stream_id, bucket) in keys.items():
        count = int(found.get(key, 0))
        series[stream_id].append((bucket * RATE_BUCKET_SECONDS, count / RATE_BUCKET_SECONDS))
    return series


def current_rate(series: list[tuple[float, float]]) -> float:
    """The rate over the last three complete buckets (the newest one is still filling)."""
    complete = series[-4:-1]
    return sum(rate for _, rate in complete) / len(complete) if complete else 0.0
