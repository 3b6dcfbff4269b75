"""Artifact storage: one interface, a local-filesystem implementation under
settings.DATA_DIR/artifacts (S3 can follow behind the same interface).

A run's artifacts live under `<experiment_id>/<run_id>/artifacts/`, a logged model's
under `<experiment_id>/models/<model_id>/artifacts/` (the layout MLflow's artifact
proxy uses, so `mlflow-artifacts:/` URIs map one to one). Every relative path is
checked before it touches the disk: decoded repeatedly, refused on `..`, backslashes,
absolute paths, NUL bytes, `#`/`?`, and finally resolved and confined to its root, so
symlinks cannot lead out either. Uploads and downloads stream in chunks."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import tempfile
import time
from typing import BinaryIO
from urllib.parse import unquote

from django.conf import settings

from experiments.models import LoggedModel, Run
from mlplatform.errors import NotFound, ValidationFailed

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the root it was listed from
    is_dir: bool
    file_size: int | None


def clean_relative_path(path: str | None) -> str:
    """The path as a safe POSIX path relative to an artifact root ('' for the root), or
    ValidationFailed. Decoding is repeated so that `%2e%2e` and `%252e%252e` are seen."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise ValidationFailed("Artifact path must be a string.")
    candidates = [path]
    for _ in range(3):
        decoded = unquote(candidates[-1])
        if decoded == candidates[-1]:
            break
        candidates.append(decoded)
    for candidate in candidates:
        if "\x00" in candidate or "\\" in candidate or "#" in candidate or "?" in candidate:
            raise ValidationFailed(f"Invalid artifact path '{path}': it contains a forbidden character.")
        if candidate.startswith("/") or (len(candidate) > 1 and candidate[1] == ":"):
            raise ValidationFailed(f"Invalid artifact path '{path}': absolute paths are not allowed.")
        if any(part == ".." for part in candidate.split("/")):
            raise ValidationFailed(f"Invalid artifact path '{path}': '..' is not allowed.")
    if len(candidates) > 1:  # never store a name that decodes to something else
        raise ValidationFailed(f"Invalid artifact path '{path}': percent-encoded names are not allowed.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/".join(parts)


def run_root(run: Run) -> str:
    return f"{run.experiment_id}/{run.pk}/artifacts"


def model_root(model: LoggedModel) -> str:
    return f"{model.experiment_id}/models/{model.pk}/artifacts"


class ArtifactStore:
    """What every artifact backend offers. `root` is a store-relative root made by
    run_root/model_root; `path` is user input, cleaned here."""

    def write(self, root: str, path: str, chunks: Iterable[bytes]) -> int:
        raise NotImplementedError

    def open(self, root: str, path: str) -> BinaryIO:
        raise NotImplementedError

    def list(self, root: str, path: str = "") -> list[FileInfo]:
        raise NotImplementedError

    def delete(self, root: str, path: str = "") -> None:
        raise NotImplementedError

    def local_dir(self, root: str) -> Path:
        """A local directory holding the root's files (a download cache for remote stores)."""
        raise NotImplementedError

    def sweep_staging(self, prefix: str, idle_seconds: float) -> int:
        """Delete the staging directories named `prefix*` at the top of any root that
        nothing has touched for `idle_seconds`; how many were deleted."""
        raise NotImplementedError


class LocalArtifactStore(ArtifactStore):
    def __init__(self, base: Path | None = None) -> None:
        self.base = Path(base or Path(settings.DATA_DIR) / "artifacts")

    def _root_dir(self, root: str) -> Path:
        return (self.base / root).resolve()

    def _resolve(self, root: str, path: str) -> tuple[Path, Path]:
        root_dir = self._root_dir(root)
        rel = clean_relative_path(path)
        target = (root_dir / rel).resolve() if rel else root_dir
        if target != root_dir and root_dir not in target.parents:
            raise ValidationFailed(f"Invalid artifact path '{path}': it leaves the artifact root.")
        return root_dir, target

    def write(self, root: str, path: str, chunks: Iterable[bytes]) -> int:
        root_dir, target = self._resolve(root, path)
        if target == root_dir:
            raise ValidationFailed("An artifact upload needs a file name.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise ValidationFailed(f"'{path}' is a directory.")
        # Write to a temporary file, then rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def open(self, root: str, path: str) -> BinaryIO:
        _, target = self._resolve(root, path)
        if not target.is_file():
            raise NotFound(f"Artifact '{path}' not found.")
        return target.open("rb")

    def list(self, root: str, path: str = "") -> list[FileInfo]:
        root_dir, target = self._resolve(root, path)
        if not target.is_dir():
            return []
        infos = []
        for entry in sorted(target.iterdir(), key=lambda p: p.name):
            if entry.name.startswith((".upload-", ".mpu-")):  # half-written files, multipart staging
                continue
            rel = entry.relative_to(root_dir).as_posix()
            if entry.is_dir():
                infos.append(FileInfo(rel, True, None))
            else:
                infos.append(FileInfo(rel, False, entry.stat().st_size))
        return infos

    def delete(self, root: str, path: str = "") -> None:
        _, target = self._resolve(root, path)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        else:
            raise NotFound(f"Artifact '{path}' not found.")

    def local_dir(self, root: str) -> Path:
        return self._root_dir(root)

    def sweep_staging(self, prefix: str, idle_seconds: float) -> int:
        # Roots are <experiment>/<run>/artifacts and <experiment>/models/<model>/artifacts.
        cutoff = time.time() - idle_seconds
        deleted = 0
        for pattern in (f"*/*/artifacts/{prefix}*", f"*/models/*/artifacts/{prefix}*"):
            for staging in self.base.glob(pattern):
                if not staging.is_dir() or staging.is_symlink():
                    continue
                touched = max([staging.stat().st_mtime, *(f.stat().st_mtime for f in staging.iterdir())])
                if touched < cutoff:
                    shutil.rmtree(staging, ignore_errors=True)
                    deleted += 1
        return deleted


def get_store() -> ArtifactStore:
    return LocalArtifactStore()


def iter_file(handle: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def run_local_dir(run: Run) -> Path:
    """The local directory of a run's artifacts (may not exist yet)."""
    return get_store().local_dir(run_root(run))


def model_local_dir(model: LoggedModel) -> Path:
    """The local directory of a logged model's artifacts (holds its MLmodel file)."""
    return get_store().local_dir(model_root(model))
