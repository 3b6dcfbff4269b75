"""MLflow's limits on logged data, so our server refuses exactly what MLflow refuses."""

import math
import posixpath
import re

from mlplatform.errors import ValidationFailed

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_ENTITY_KEY_LENGTH = 250
MAX_RUN_NAME_LENGTH = 250
MAX_DATASETS_PER_BATCH = 1000

_KEY_RE = re.compile(r"^[/\w.\- :]*$")


def validate_key(key: object, kind: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValidationFailed(f"Invalid {kind} name: a non-empty string is required.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise ValidationFailed(f"{kind.capitalize()} name '{key[:50]}…' exceeds {MAX_ENTITY_KEY_LENGTH} characters.")
    if not _KEY_RE.match(key):
        raise ValidationFailed(
            f"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    normalized = posixpath.normpath(key)
    if normalized != key.rstrip("/") or normalized.startswith(("/", "..")) or normalized == ".":
        raise ValidationFailed(f"Invalid {kind} name: '{key}'. Names may be treated as files and must not be paths.")
    return key


def validate_value(value: object, limit: int, kind: str, key: str) -> str:
    if value is None:
        value = ""
    value = str(value)
    if len(value) > limit:
        raise ValidationFailed(
            f"{kind.capitalize()} '{key}' value is {len(value)} characters, over the limit of {limit}."
        )
    return value


def parse_metric_value(value: object, key: str) -> float:
    """A float from a JSON number or MLflow's string spellings of NaN and infinities."""
    if isinstance(value, bool):
        raise ValidationFailed(f"Metric '{key}' has a non-numeric value.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in {"NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"}:
        return float(value.replace("Infinity", "inf"))
    try:
        return float(value)  # numeric strings, as protobuf's JSON parser accepts them
    except (TypeError, ValueError):
        raise ValidationFailed(f"Got invalid value {value!r} for metric '{key}'. Metric values must be numeric.")


def parse_int(value: object, name: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValidationFailed(f"{name} must be an integer.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} must be an integer, got {value!r}.")
    if isinstance(value, float) and not value.is_integer():
        raise ValidationFailed(f"{name} must be an integer, got {value!r}.")
    return number


def is_nan(value: float) -> bool:
    return math.isnan(value)
