"""Validation of a job spec: everything a submitter controls is checked here, before
anything is stored or queued, and every refusal says what to fix."""

from dataclasses import dataclass, field
import io
from pathlib import PurePosixPath
import re
import stat
import tarfile
import zipfile

from django.conf import settings

from mlplatform.errors import ValidationFailed

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
# Set by the platform; a job may not override them. MLP_DATASETS is the job's own
# request: the dataset versions it reads (mlplatform.client.datasets).
RESERVED_ENV = re.compile(r"^(MLFLOW_|MLP_(?!DATASETS$)|PATH$|HOME$|PYTHONPATH$|LD_)")
MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]i?[bB]?)?\s*$")
MAX_ARGS = 200
MAX_ARG_CHARS = 4096
MAX_SCRIPT_CHARS = 200_000
MAX_ENV = 100
MAX_PARAMS = 100
MAX_TIMEOUT = 7 * 24 * 3600


def bundle_limit() -> int:
    return getattr(settings, "MLP_JOB_BUNDLE_MAX_BYTES", 20 * 1024 * 1024)


@dataclass
class Resources:
    cpus: float = 1.0
    memory_mb: int = 1024
    gpus: int = 0
    timeout_seconds: int = 3600


@dataclass
class EnvSpec:
    plain: dict[str, str] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)


def clean_command(command: object) -> list[str]:
    """An argument list. A string is refused, even a harmless one: joining and
    re-splitting is where shell injection starts."""
    if isinstance(command, str):
        raise ValidationFailed(
            'The command must be a list of arguments, e.g. ["python", "train.py"], not a shell string.'
        )
    if not isinstance(command, list | tuple) or not command:
        raise ValidationFailed('The command must be a non-empty list of arguments, e.g. ["python", "train.py"].')
    if len(command) > MAX_ARGS:
        raise ValidationFailed(f"The command has more than {MAX_ARGS} arguments.")
    args = []
    for arg in command:
        if not isinstance(arg, str | int | float) or isinstance(arg, bool):
            raise ValidationFailed("Every command argument must be a string.")
        arg = str(arg)
        if "\x00" in arg or len(arg) > MAX_ARG_CHARS:
            raise ValidationFailed("A command argument is too long or contains a NUL byte.")
        args.append(arg)
    if not args[0].strip():
        raise ValidationFailed("The command's program is empty.")
    return args


def parse_memory_mb(value: object) -> int:
    if isinstance(value, bool):
        raise ValidationFailed("Memory must be a size such as 512m or 2g.")
    if isinstance(value, int | float):
        mb = float(value)
    else:
        match = MEMORY.match(str(value))
        if not match:
            raise ValidationFailed(f"Memory '{value}' is not a size such as 512m or 2g.")
        unit = (match.group(2) or "m")[0].lower()
        mb = float(match.group(1)) * {"k": 1 / 1024, "m": 1, "g": 1024}[unit]
    if not 16 <= mb <= 1024 * 1024:
        raise ValidationFailed("Memory must be between 16 MB and 1 TB.")
    return int(mb)


def _number(value: object, name: str, kind: type) -> float:
    if isinstance(value, bool):
        raise ValidationFailed(f"Resource '{name}' must be a number.")
    try:
        number = kind(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"Resource '{name}' must be a number, not {value!r}.") from exc
    if kind is int and float(value) != number:
        raise ValidationFailed(f"Resource '{name}' must be a whole number.")
    return number


def clean_resources(raw: object) -> Resources:
    if raw is None:
        return Resources()
    if not isinstance(raw, dict):
        raise ValidationFailed('Resources must be an object such as {"cpus": 1, "memory": "512m", "timeout": 600}.')
    unknown = set(raw) - {"cpus", "memory", "memory_mb", "gpus", "timeout", "timeout_seconds"}
    if unknown:
        raise ValidationFailed(f"Unknown resources: {', '.join(sorted(unknown))}.")
    res = Resources()
    if "cpus" in raw:
        res.cpus = _number(raw["cpus"], "cpus", float)
        if not 0.05 <= res.cpus <= 256:
            raise ValidationFailed("cpus must be between 0.05 and 256.")
    memory = raw.get("memory", raw.get("memory_mb"))
    if memory is not None:
        res.memory_mb = parse_memory_mb(memory)
    if "gpus" in raw:
        res.gpus = int(_number(raw["gpus"], "gpus", int))
        if not 0 <= res.gpus <= 16:
            raise ValidationFailed("gpus must be between 0 and 16.")
    timeout = raw.get("timeout", raw.get("timeout_seconds"))
    if timeout is not None:
        res.timeout_seconds = int(_number(timeout, "timeout", int))
        if not 1 <= res.timeout_seconds <= MAX_TIMEOUT:
            raise ValidationFailed(f"timeout must be between 1 and {MAX_TIMEOUT} seconds.")
    return res


def clean_env(env: object, secret_env: object = None) -> EnvSpec:
    spec = EnvSpec()
    for raw, target in ((env, spec.plain), (secret_env, spec.secret)):
        if raw in (None, ""):
            continue
        if not isinstance(raw, dict):
            raise ValidationFailed("Environment variables must be an object of NAME: value.")
        for name, value in raw.items():
            if not ENV_NAME.match(str(name)):
                raise ValidationFailed(f"'{name}' is not a valid environment variable name.")
            if RESERVED_ENV.match(name):
                raise ValidationFailed(f"'{name}' is set by the platform and cannot be overridden.")
            if not isinstance(value, str | int | float) or isinstance(value, bool) or "\x00" in str(value):
                raise ValidationFailed(f"The value of '{name}' must be a string.")
            target[name] = str(value)
    if len(spec.plain) + len(spec.secret) > MAX_ENV:
        raise ValidationFailed(f"At most {MAX_ENV} environment variables.")
    return spec


def clean_params(params: object) -> dict[str, str]:
    if params in (None, ""):
        return {}
    if not isinstance(params, dict):
        raise ValidationFailed("Params must be an object of name: value.")
    if len(params) > MAX_PARAMS:
        raise ValidationFailed(f"At most {MAX_PARAMS} params.")
    cleaned = {}
    for name, value in params.items():
        if not PARAM_NAME.match(str(name)):
            raise ValidationFailed(f"'{name}' is not a valid param name (letters, digits, _ . -).")
        if isinstance(value, dict | list) or value is None:
            raise ValidationFailed(f"Param '{name}' must be a single value.")
        text = str(value)
        if len(text) > 6000 or "\x00" in text:
            raise ValidationFailed(f"Param '{name}' is too long.")
        cleaned[str(name)] = text
    return cleaned


def clean_script(script: object) -> str:
    if not script:
        return ""
    if not isinstance(script, str) or len(script) > MAX_SCRIPT_CHARS or "\x00" in script:
        raise ValidationFailed(f"The inline script must be text under {MAX_SCRIPT_CHARS} characters.")
    return script


def _safe_member(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or "\x00" in name or path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise ValidationFailed(f"The bundle contains an unsafe path: {name!r}.")


def check_bundle(data: bytes, filename: str) -> str:
    """Validates an uploaded zip or tar bundle without extracting it; returns its kind.
    Refuses paths leaving the work dir, links, devices, and archives that unpack past
    the size limit (zip bombs)."""
    limit = bundle_limit()
    if len(data) > limit:
        raise ValidationFailed(f"The bundle is {len(data)} bytes; the limit is {limit} bytes.")
    if zipfile.is_zipfile(io.BytesIO(data)):
        _check_zip(data, limit)
        return "zip"
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            _check_tar(tar, limit)
        return "tar"
    except tarfile.TarError as exc:
        raise ValidationFailed(f"'{filename}' is neither a zip nor a tar archive.") from exc


def _check_zip(data: bytes, limit: int) -> None:
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            _safe_member(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ValidationFailed(f"The bundle contains a symlink: {info.filename!r}.")
            total += info.file_size
    if total > limit * 5:
        raise ValidationFailed("The bundle unpacks to more than five times the size limit.")


def _check_tar(tar: tarfile.TarFile, limit: int) -> None:
    total = 0
    for member in tar.getmembers():
        _safe_member(member.name)
        if not (member.isfile() or member.isdir()):
            raise ValidationFailed(f"The bundle contains a link or special file: {member.name!r}.")
        total += member.size
    if total > limit * 5:
        raise ValidationFailed("The bundle unpacks to more than five times the size limit.")


def extract_bundle(path: str, dest: str) -> None:
    """Unpacks a bundle that check_bundle accepted; checks again, since the file on disk
    is what gets extracted."""
    with open(path, "rb") as handle:
        data = handle.read()
    kind = check_bundle(data, path)
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(dest)  # noqa: S202 - members checked above
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            tar.extractall(dest, filter="data")  # noqa: S202 - members checked above, "data" filter
