"""The artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`) and runs'
`artifacts/list`. A proxy path names its owner first — `<exp>/<run_id>/artifacts/...`
or `<exp>/models/<model_id>/artifacts/...` — and that owner's project is checked
before the store sees the rest of the path."""

import mimetypes
import os
import posixpath
import re
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.core import signing
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt

from experiments import artifacts, multipart, selectors
from experiments.mlflow_api.common import MlflowError, RequestData, endpoint, error_response, json_response, raw_body
from experiments.models import Lifecycle
from experiments.validation import parse_int
from mlplatform.errors import ApplicationError, NotFound, PermissionDenied
from mlplatform.models import User
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


# -- multipart uploads (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD) ------------------------
# The client PUTs each part to the URL it was given, with no credentials of its own
# (made for S3's presigned URLs): so each URL carries a signed, expiring claim naming
# the user, the artifact root, the upload and the part; the user's role is checked again
# when the part arrives.
PART_URL_SALT = "mlflow-artifacts-mpu-part"
PART_URL_SECONDS = multipart.UPLOAD_LIFETIME_SECONDS


def _part_url(request, user, root_path: str, upload_id: str, part_number: int) -> str:
    claim = signing.dumps(
        {"user": user.pk, "root": root_path, "id": upload_id, "part": part_number}, salt=PART_URL_SALT
    )
    return request.build_absolute_uri(f"/api/2.0/mlflow-artifacts/mpu/part?{urlencode({'token': claim})}")


def _file_name(local_path: str) -> str:
    """The client sends its local file's path; the artifact takes its name."""
    return re.split(r"[\\/]", local_path or "")[-1]


@endpoint("POST")
def mpu_create(request, user, data: RequestData, artifact_path: str):
    root, rel, root_path = _owner_root(user, artifact_path, Role.DATA_SCIENTIST)
    name = _file_name(data.string("path"))
    num_parts = parse_int(data.get("num_parts"), "num_parts", 1)
    upload_id = multipart.upload_create(root=root, path=posixpath.join(rel, name) if rel else name, num_parts=num_parts)
    credentials = [
        {"part_number": n, "url": _part_url(request, user, root_path, upload_id, n), "headers": {}}
        for n in range(1, num_parts + 1)
    ]
    return {"upload_id": upload_id, "credentials": credentials}


@endpoint("POST")
def mpu_complete(request, user, data: RequestData, artifact_path: str):
    root, _, _ = _owner_root(user, artifact_path, Role.DATA_SCIENTIST)
    parts = data.list("parts")
    numbers = [p.get("part_number") if isinstance(p, dict) else None for p in parts]
    multipart.upload_complete(
        root=root, upload_id=data.string("upload_id"), part_numbers=[_part_number(n) for n in numbers]
    )
    return {}


def _part_number(value: object) -> int:
    number = parse_int(value, "part_number")
    if number is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Each part needs its part_number.")
    return number


@endpoint("POST")
def mpu_abort(request, user, data: RequestData, artifact_path: str):
    root, _, _ = _owner_root(user, artifact_path, Role.DATA_SCIENTIST)
    multipart.upload_abort(root=root, upload_id=data.string("upload_id"))
    return {}


@csrf_exempt
def mpu_part(request):
    """PUT one part to a signed URL handed out by mpu_create (no Authorization header)."""
    if request.method != "PUT":
        return error_response("ENDPOINT_NOT_FOUND", f"{request.method} is not allowed here.", 405)
    try:
        claim = signing.loads(request.GET.get("token", ""), salt=PART_URL_SALT, max_age=PART_URL_SECONDS)
    except signing.BadSignature:
        return error_response("PERMISSION_DENIED", "Invalid or expired part upload URL.", 403)
    user = User.objects.filter(pk=claim["user"], is_active=True).first()
    if user is None:
        return error_response("PERMISSION_DENIED", "Invalid or expired part upload URL.", 403)
    try:
        root, _, _ = _owner_root(user, claim["root"], Role.DATA_SCIENTIST)
        etag = multipart.part_write(
            root=root, upload_id=claim["id"], part_number=claim["part"], chunks=_stream_body(request)
        )
    except NotFound as exc:
        return error_response("RESOURCE_DOES_NOT_EXIST", exc.message, 404)
    except PermissionDenied as exc:
        return error_response("PERMISSION_DENIED", exc.message, 403)
    except ApplicationError as exc:
        return error_response("INVALID_PARAMETER_VALUE", exc.message, 400)
    response = json_response({})
    response["ETag"] = etag
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
