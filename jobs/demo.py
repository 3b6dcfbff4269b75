"""Demo jobs for `make run`: a finished training job with metrics and a saved model,
and a small grid sweep. Run synchronously with the local executor; idempotent.

The jobs log with the real MLflow client, and seed_demo runs before the platform
serves anything: so the platform is served here, on a free loopback port, while the
demo jobs run."""

from collections.abc import Iterator
from contextlib import contextmanager
import socket
import threading
import time

from django.conf import settings

from jobs import runner, services
from jobs.models import Job, Sweep

TRAIN = """import json, pickle, sys, mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
c = float(args.get("--C", 1.0))
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
for epoch in range(1, 6):
    model = LogisticRegression(C=c, max_iter=epoch * 10).fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    print(f"epoch {epoch}: accuracy {accuracy:.3f}", flush=True)
    mlflow.log_metric("accuracy", accuracy, step=epoch)
    mlflow.log_metric("progress", epoch / 5)
with open("model.pkl", "wb") as handle:
    pickle.dump(model, handle)
mlflow.log_artifact("model.pkl", "model")
print("saved model/model.pkl")
"""


@contextmanager
def tracking_server() -> Iterator[str]:
    """The platform's ASGI app served in a thread; MLP_PUBLIC_URL points at it meanwhile."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config("mlplatform.asgi:application", host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="demo-tracking", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    public_url, settings.MLP_PUBLIC_URL = settings.MLP_PUBLIC_URL, f"http://127.0.0.1:{port}"
    try:
        yield settings.MLP_PUBLIC_URL
    finally:
        settings.MLP_PUBLIC_URL = public_url
        server.should_exit = True
        thread.join(10)


def seed(admin, project) -> None:
    if (
        Job.objects.filter(project=project, name="demo: train iris").exists()
        and Sweep.objects.filter(project=project, name="demo: C sweep").exists()
    ):
        return
    with tracking_server():
        _seed(admin, project)


def _seed(admin, project) -> None:
    if not Job.objects.filter(project=project, name="demo: train iris").exists():
        job = services.job_submit(
            project=project, user=admin, name="demo: train iris", script=TRAIN, params={"C": "1.0"}, dispatch=False
        )
        runner.job_execute(job_id=job.pk, worker="seed_demo")
    if not Sweep.objects.filter(project=project, name="demo: C sweep").exists():
        sweep = services.sweep_submit(
            project=project,
            user=admin,
            name="demo: C sweep",
            space={"C": [0.01, 0.1, 1.0, 10.0]},
            metric="accuracy",
            max_concurrency=2,
            job={"script": TRAIN},
        )
        for child in Job.objects.filter(sweep=sweep).order_by("pk"):
            runner.job_execute(job_id=child.pk, worker="seed_demo")
