"""Filters for the experiment and registry pages: MLflow's millisecond timestamps,
durations, metric numbers (NaN and infinities included) and dict lookups."""

from datetime import UTC, datetime
import math

from django import template

register = template.Library()


@register.filter
def ms_datetime(value: int | None) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


@register.filter
def duration(run) -> str:
    """A run's wall time, `2m 5s`; empty while it has no end time."""
    if not run.end_time or not run.start_time:
        return ""
    seconds = max(0, (run.end_time - run.start_time) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


@register.filter
def num(value) -> str:
    """Metric numbers to 4 significant digits, keeping NaN and ±inf readable."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0").rstrip(".") if not float(value).is_integer() else str(int(value))


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def status_badge(status: str) -> str:
    return {"FINISHED": "badge-ok", "FAILED": "badge-bad", "KILLED": "badge-warn", "RUNNING": "badge-info"}.get(
        status, ""
    )


@register.filter
def short(value: str, length: int = 8) -> str:
    return (value or "")[: int(length)]


@register.filter
def filesize(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


@register.filter
def basename(path: str) -> str:
    return (path or "").rstrip("/").rsplit("/", 1)[-1]
