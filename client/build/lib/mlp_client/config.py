"""Where the URL and token come from: explicit arguments, then a named profile, then
MLP_URL / MLP_TOKEN, then the default profile, then MLFLOW_TRACKING_URI /
MLFLOW_TRACKING_TOKEN (what an MLflow user already has set).

Profiles live in one JSON file readable by its owner only (0600):
`$MLP_CONFIG`, else `$XDG_CONFIG_HOME/mlp/config.json`, else `~/.config/mlp/config.json`."""

from dataclasses import dataclass
import json
import os
from pathlib import Path

from mlp_client.errors import UsageError

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str
    source: str


def config_path() -> Path:
    if os.environ.get("MLP_CONFIG"):
        return Path(os.environ["MLP_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlp" / "config.json"


def load() -> dict:
    path = config_path()
    if not path.exists():
        return {"default": DEFAULT_PROFILE, "profiles": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); fix or delete it and run `mlp login`.")
    data.setdefault("profiles", {})
    data.setdefault("default", DEFAULT_PROFILE)
    return data


def save_profile(name: str, *, url: str, token: str, make_default: bool = False) -> Path:
    data = load()
    data["profiles"][name] = {"url": url.rstrip("/"), "token": token}
    if make_default or len(data["profiles"]) == 1:
        data["default"] = name
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the token is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.chmod(path, 0o600)
    return path


def resolve(*, url: str | None = None, token: str | None = None, profile: str | None = None) -> Settings:
    env = os.environ
    data = load()
    profiles = data["profiles"]
    profile = profile or env.get("MLP_PROFILE")
    if profile and profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"No profile '{profile}' (known: {known}); run `mlp login --profile {profile}`.")
    candidates = []
    if profile:
        candidates.append((profiles[profile].get("url"), profiles[profile].get("token"), f"profile {profile}"))
    candidates.append((env.get("MLP_URL"), env.get("MLP_TOKEN"), "MLP_URL/MLP_TOKEN"))
    default = profiles.get(data["default"])
    if default:
        candidates.append((default.get("url"), default.get("token"), f"profile {data['default']}"))
    candidates.append((env.get("MLFLOW_TRACKING_URI"), env.get("MLFLOW_TRACKING_TOKEN"), "MLFLOW_TRACKING_*"))
    if url:
        return Settings(url=url.rstrip("/"), token=token or env.get("MLP_TOKEN", ""), source="arguments")
    for found_url, found_token, source in candidates:
        # MLFLOW_TRACKING_URI may name a local store (file:, sqlite:, databricks): not us.
        if found_url and found_url.startswith(("http://", "https://")):
            return Settings(url=found_url.rstrip("/"), token=token or found_token or "", source=source)
    raise UsageError("No platform URL: run `mlp login`, or set MLP_URL and MLP_TOKEN.")
