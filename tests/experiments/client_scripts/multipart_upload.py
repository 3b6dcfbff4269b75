"""A file larger than MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE logged through the
server's multipart upload endpoints, then an aborted upload. Prints one RESULT line."""

import hashlib
import json
import os

os.environ.update(
    MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="true",
    MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE="1024",
    MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE="4096",
)

import mlflow  # noqa: E402
from mlflow.artifacts import download_artifacts  # noqa: E402
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # noqa: E402
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository  # noqa: E402

completed = []
real_complete = HttpArtifactRepository.complete_multipart_upload


def recording_complete(self, local_file, upload_id, parts=None, artifact_path=None):
    completed.append(len(parts))
    return real_complete(self, local_file, upload_id, parts, artifact_path)


HttpArtifactRepository.complete_multipart_upload = recording_complete

payload = os.urandom(10_000) + b"tail"
with open("big.bin", "wb") as f:
    f.write(payload)
mlflow.set_experiment("multipart")
out = {}
with mlflow.start_run() as run:
    mlflow.log_artifact("big.bin", artifact_path="data")
    repo = get_artifact_repository(run.info.artifact_uri)
    create = repo.create_multipart_upload(os.path.abspath("big.bin"), 2, "aborted")
    repo.abort_multipart_upload(os.path.abspath("big.bin"), create.upload_id, "aborted")
out["parts"] = completed
local = download_artifacts(run_id=run.info.run_id, artifact_path="data/big.bin", dst_path="dl")
with open(local, "rb") as f:
    out["same_bytes"] = hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(payload).hexdigest()
client = mlflow.MlflowClient()
out["listing"] = [a.path for a in client.list_artifacts(run.info.run_id)]
out["data_listing"] = [(a.path, a.file_size) for a in client.list_artifacts(run.info.run_id, "data")]
out["run_id"] = run.info.run_id
print("RESULT " + json.dumps(out))
