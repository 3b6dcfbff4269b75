"""Multipart artifact uploads (MLflow's `mlflow-artifacts/mpu/*`) on top of the artifact
store interface: parts stream into a staging directory `.mpu-<upload_id>/` inside the
owner's own artifact root, and completing concatenates them, in part order, into the
destination with one streamed write. Nothing leaves the root: the destination and the
staging names go through the store's path checks like any other artifact."""

from collections.abc import Iterable, Iterator
import hashlib
import json
import re
import uuid

from experiments.artifacts import clean_relative_path, get_store, iter_file
from mlplatform.errors import NotFound, ValidationFailed

STAGING_PREFIX = ".mpu-"
MAX_PARTS = 10000
# How long an upload's part URLs stay valid; an upload idle for longer can never be
# completed, and abandoned_uploads_sweep deletes its staging directory.
UPLOAD_LIFETIME_SECONDS = 24 * 3600
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _staging(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
        raise ValidationFailed("Invalid multipart upload id.")
    return f"{STAGING_PREFIX}{upload_id}"


def _part_name(upload_id: str, part_number: int) -> str:
    return f"{_staging(upload_id)}/part-{part_number:05d}"


def upload_create(*, root: str, path: str, num_parts: int) -> str:
    """Start an upload of `num_parts` parts to `path` inside `root`; the upload id."""
    path = clean_relative_path(path)
    if not path:
        raise ValidationFailed("A multipart upload needs a file name.")
    if path.split("/")[0].startswith(STAGING_PREFIX):
        raise ValidationFailed(f"Invalid artifact path '{path}'.")
    if type(num_parts) is not int or not 1 <= num_parts <= MAX_PARTS:
        raise ValidationFailed(f"num_parts must be between 1 and {MAX_PARTS}.")
    upload_id = uuid.uuid4().hex
    manifest = json.dumps({"path": path, "num_parts": num_parts}).encode()
    get_store().write(root, f"{_staging(upload_id)}/manifest.json", [manifest])
    return upload_id


def _manifest(root: str, upload_id: str) -> dict:
    try:
        with get_store().open(root, f"{_staging(upload_id)}/manifest.json") as handle:
            return json.loads(handle.read())
    except NotFound:
        raise NotFound(f"Multipart upload '{upload_id}' not found.")


def part_write(*, root: str, upload_id: str, part_number: int, chunks: Iterable[bytes]) -> str:
    """Stream one part to the staging directory; its ETag (the MD5 of its bytes, as S3)."""
    manifest = _manifest(root, upload_id)
    if type(part_number) is not int or not 1 <= part_number <= manifest["num_parts"]:
        raise ValidationFailed(f"Invalid part number {part_number!r} for upload '{upload_id}'.")
    digest = hashlib.md5(usedforsecurity=False)

    def hashed() -> Iterator[bytes]:
        for chunk in chunks:
            digest.update(chunk)
            yield chunk

    get_store().write(root, _part_name(upload_id, part_number), hashed())
    return f'"{digest.hexdigest()}"'


def upload_complete(*, root: str, upload_id: str, part_numbers: list[int]) -> str:
    """Concatenate the parts into the destination (a reader never sees half a file:
    the store writes to a temporary name first) and drop the staging directory."""
    manifest = _manifest(root, upload_id)
    expected = list(range(1, manifest["num_parts"] + 1))
    if sorted(part_numbers) != expected:
        raise ValidationFailed(f"Upload '{upload_id}' needs parts 1..{manifest['num_parts']}, each once.")
    store = get_store()
    handles = [store.open(root, _part_name(upload_id, n)) for n in expected]  # NotFound if one is missing

    def joined() -> Iterator[bytes]:
        for handle in handles:
            yield from iter_file(handle)

    try:
        store.write(root, manifest["path"], joined())
    finally:
        for handle in handles:
            handle.close()
    store.delete(root, _staging(upload_id))
    return manifest["path"]


def upload_abort(*, root: str, upload_id: str) -> None:
    try:
        get_store().delete(root, _staging(upload_id))
    except NotFound:
        pass  # aborting twice, or after completing, is fine


def abandoned_uploads_sweep(*, idle_seconds: float = UPLOAD_LIFETIME_SECONDS + 3600) -> int:
    """Delete the staging directories of uploads nobody can finish any more (no part
    written for longer than a part URL lives): a client that died mid-upload leaves its
    parts behind otherwise. Run hourly by Celery beat; how many were deleted."""
    return get_store().sweep_staging(STAGING_PREFIX, idle_seconds)
