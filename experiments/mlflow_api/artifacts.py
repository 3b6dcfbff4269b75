"""The artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`) and runs'
`artifacts/list`. A proxy path names its owner first — `<exp>/<run_id>/artifacts/...`
or `<exp>/models/<model_id>/artifacts/...` — and that owner's project is checked
before the store sees the rest of the path."""

import mimetypes
import os
import posixpath
import re

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from experiments import artifacts, selectors
from experiments.mlflow_api.common import MlflowError, RequestData, endpoint, raw_body
from experiments.models import Lifecycle
from mlplatform.errors import NotFound
from mlplatform.roles import Role

_RUN_PATH = re.compile(r"^(?P<exp>\d+)/(?P<run_id>[0-9a-f]{32})/artifacts(?:/(?P<rest>.*))?$")
_MODEL_PATH = re.compile(r"^(?P<exp>\d+)/models/(?P<model_id>m-[0-9a-f]{32})/artifacts(?:/(?P<rest>.*))?$")
# Types a browser would render or run get served as plain text, so an uploaded page
# cannot script our origin.
_UNSAFE_TYPES = {"text/html", "image/svg+xml", "application/javascript", "text/javascript", "application/xhtml+xml"}


def _owner_root(user, proxy_path: str, min_role: str) -> tuple[str, str, str]:
    """(store root, path inside it, root as a proxy path) for a proxy path."""
    artifacts.clean_relative_path(proxy_path)  # refuse traversal before matching anything
    proxy_path = proxy_path.strip("/")
    if m := _RUN_PATH.match(proxy_path):
        run = selectors.run_get(user=user, run_id=m["run_id"], min_role=min_role)
        if str(run.experiment_id) != m["exp"]:
            raise NotFound(f"Run with id={m['run_id']} not found")
        if min_role != Role.VIEWER and run.lifecycle_stage != Lifecycle.ACTIVE:
            raise MlflowError("INVALID_STATE", f"The run {run.pk} must be in the 'active' state.")
        return artifacts.run_root(run), m["rest"] or "", f"{m['exp']}/{m['run_id']}/artifacts"
    if m := _MODEL_PATH.match(proxy_path):
        model = selectors.logged_model_get(user=user, model_id=m["model_id"], min_role=min_role)
        if str(model.experiment_id) != m["exp"]:
            raise NotFound(f"Logged model with ID '{m['model_id']}' not found.")
        return artifacts.model_root(model), m["rest"] or "", f"{m['exp']}/models/{m['model_id']}/artifacts"
    raise NotFound(f"No artifact root at '{proxy_path}'.")


def _stream_body(request, chunk_size: int = artifacts.CHUNK_SIZE):
    # request.read streams the (disk-spooled) body: never request.body, which would
    # load it whole and trip DATA_UPLOAD_MAX_MEMORY_SIZE.
    while chunk := request.read(chunk_size):
        yield chunk


@endpoint("GET", "PUT", "DELETE")
@raw_body
def proxy_artifact(request, user, data, artifact_path: str):
    if request.method == "PUT":
        root, rel, _ = _owner_root(user, artifact_path, Role.DATA_SCIENTIST)
        artifacts.get_store().write(root, rel, _stream_body(request))
        return {}
    if request.method == "DELETE":
        root, rel, _ = _owner_root(user, artifact_path, Role.DATA_SCIENTIST)
        artifacts.get_store().delete(root, rel)
        return {}
    root, rel, _ = _owner_root(user, artifact_path, Role.VIEWER)
    return file_response(artifacts.get_store().open(root, rel), rel)


async def _aiter_file(handle, chunk_size: int = artifacts.CHUNK_SIZE):
    # An async iterator: given a sync one, Django's ASGI handler would read the whole
    # file into a list before sending the first byte.
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while chunk := await read(chunk_size):
            yield chunk
    finally:
        handle.close()


def file_response(handle, rel: str) -> StreamingHttpResponse:
    name = posixpath.basename(rel) or "artifact"
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type in _UNSAFE_TYPES:
        content_type = "text/plain"
    size = os.fstat(handle.fileno()).st_size
    response = StreamingHttpResponse(_aiter_file(handle), content_type=content_type)
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


@endpoint("GET")
def proxy_list(request, user, data: RequestData):
    path = data.get("path") or ""
    root, rel, root_path = _owner_root(user, path, Role.VIEWER)
    files = []
    for info in artifacts.get_store().list(root, rel):
        entry = {"path": posixpath.basename(info.path), "is_dir": info.is_dir}
        if info.file_size is not None:
            entry["file_size"] = info.file_size
        files.append(entry)
    return {"files": files}


@endpoint("GET")
def run_artifacts_list(request, user, data: RequestData):
    run = selectors.run_get(user=user, run_id=data.run_id())
    rel = artifacts.clean_relative_path(data.get("path") or "")
    files = []
    for info in artifacts.get_store().list(artifacts.run_root(run), rel):
        entry = {"path": info.path, "is_dir": info.is_dir}
        if info.file_size is not None:
            entry["file_size"] = info.file_size
        files.append(entry)
    return {"root_uri": run.artifact_uri, "files": files}
