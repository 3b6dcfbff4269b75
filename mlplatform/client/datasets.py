"""Read dataset versions from a job (or a notebook) into pandas.

    from mlplatform.client import datasets
    df = datasets.load("pump-sensors@training")        # in a job: its project
    df = datasets.load("mlp-dataset://demo/pump-sensors@3f2a9c01")
    frames = datasets.load_all()                       # every version the job asked for

In a job, `MLP_DATASETS` names the versions it asked for (comma-separated references,
`name=ref` to give one a key of its own), and the platform's URL and token come from
the job's MLflow settings (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN). Elsewhere pass
`base_url` and `token`, or set MLP_URL and MLP_TOKEN.

Inside an MLflow run (a job always has one) `load` also logs the version as the run's
dataset input, with source `mlp-dataset://<project>/<name>@<id>`: the run page, the
model versions trained in it and the lineage link back to the exact data. Importing
this module registers that URI scheme with MLflow, so
`mlflow.data.from_pandas(df, source="mlp-dataset://...")` works in your own code too."""

from __future__ import annotations

import os
from pathlib import Path
import tempfile
from typing import Any
from urllib.parse import quote

SCHEME = "mlp-dataset://"


class DatasetError(Exception):
    pass


def _split(text: str, project: str | None) -> tuple[str, str, str]:
    text = text.strip()
    if text.startswith(SCHEME):
        text = text[len(SCHEME) :]
    path, _, ref = text.partition("@")
    owner, _, name = path.rpartition("/")
    owner = owner or project or os.environ.get("MLP_PROJECT", "")
    if not owner or not name:
        raise DatasetError(f"Not a dataset reference with a project: {text!r}; use mlp-dataset://project/name@version.")
    return owner, name, ref or "latest"


def requested() -> dict[str, str]:
    """The versions the job asked for: {key: reference} from MLP_DATASETS."""
    out = {}
    for item in (os.environ.get("MLP_DATASETS") or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, ref = item.partition("=") if "=" in item.split("@")[0] else ("", "", item)
        ref = ref or item
        out[key or ref.split("@")[0].rsplit("/", 1)[-1]] = ref
    return out


def _base(base_url: str | None) -> str:
    url = base_url or os.environ.get("MLP_URL") or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not url.startswith(("http://", "https://")):
        raise DatasetError("No platform URL: set MLP_URL (a job has MLFLOW_TRACKING_URI).")
    return url.rstrip("/")


def _headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get("MLP_TOKEN") or os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def resolve(
    reference: str, *, project: str | None = None, base_url: str | None = None, token: str | None = None
) -> dict:
    """The version a reference names (its id, URI, rows, schema...)."""
    import requests

    owner, name, ref = _split(reference, project)
    url = f"{_base(base_url)}/api/v1/projects/{quote(owner)}/datasets/{quote(name)}/versions/{quote(ref)}/"
    response = requests.get(url, headers=_headers(token), timeout=60)
    if response.status_code != 200:
        raise DatasetError(f"{reference}: {_message(response)}")
    return response.json()


def _message(response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def load(
    reference: str | None = None,
    *,
    project: str | None = None,
    base_url: str | None = None,
    token: str | None = None,
    log_input: bool = True,
    context: str = "training",
):
    """The version as a pandas DataFrame (streamed to a temporary Parquet file first).
    `reference` may be a key of MLP_DATASETS; None means the only one the job asked for."""
    import pandas as pd
    import requests

    wanted = requested()
    if reference is None:
        if len(wanted) != 1:
            raise DatasetError(f"Name the dataset to load; the job asked for {sorted(wanted) or 'none'}.")
        reference = next(iter(wanted.values()))
    reference = wanted.get(reference, reference)
    info = resolve(reference, project=project, base_url=base_url, token=token)
    owner, name, _ = _split(info["uri"], None)
    url = f"{_base(base_url)}/api/v1/projects/{quote(owner)}/datasets/{quote(name)}/versions/{info['id']}/data"
    with tempfile.TemporaryDirectory(prefix="mlp-dataset-") as tmp:
        target = Path(tmp) / "data.parquet"
        with requests.get(url, params={"format": "parquet"}, headers=_headers(token), stream=True, timeout=600) as r:
            if r.status_code != 200:
                raise DatasetError(f"{reference}: {_message(r)}")
            with open(target, "wb") as handle:
                for chunk in r.iter_content(1 << 20):
                    handle.write(chunk)
        frame = pd.read_parquet(target)
    if log_input and os.environ.get("MLFLOW_RUN_ID"):
        _log_input(frame, info, context)
    return frame


def load_all(**kwargs: Any) -> dict:
    return {key: load(ref, **kwargs) for key, ref in requested().items()}


def _log_input(frame, info: dict, context: str) -> None:
    import mlflow

    dataset = mlflow.data.from_pandas(frame, source=MlpDatasetSource(info["uri"]), name=info["dataset"])
    mlflow.log_input(dataset, context=context, tags={"mlp.dataset.version": info["id"]})


# --- MLflow: the mlp-dataset:// scheme ------------------------------------------------------
try:
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.dataset_source_registry import register_dataset_source
except ImportError:  # MLflow is optional for loading
    DatasetSource = object  # type: ignore[assignment,misc]
    register_dataset_source = None


class MlpDatasetSource(DatasetSource):  # type: ignore[misc,valid-type]
    """A dataset version of the platform, by URI."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @staticmethod
    def _get_source_type() -> str:
        return "mlp-dataset"

    def load(self, **kwargs: Any) -> str:
        return self.uri

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith(SCHEME)

    @classmethod
    def _resolve(cls, raw_source: str) -> MlpDatasetSource:
        return cls(raw_source)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> MlpDatasetSource:
        return cls(source_dict["uri"])


if register_dataset_source is not None:
    register_dataset_source(MlpDatasetSource)
