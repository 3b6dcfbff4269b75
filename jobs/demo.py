"""Demo jobs for `make run`: a finished training job with metrics and a saved model,
and a small grid sweep. Run synchronously with the local executor; idempotent."""

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


def seed(admin, project) -> None:
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
