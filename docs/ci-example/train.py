"""The example training code of docs/ci.md: a job's run receives its params, its
accuracy and the model (an MLflow model folder under the run's `model/` artifacts)."""

import argparse
import tempfile

import mlflow
from mlflow.models import infer_signature
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0)
args = parser.parse_args()

X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(C=args.C, max_iter=500).fit(X, y)
mlflow.log_metric("accuracy", model.score(X, y))
with tempfile.TemporaryDirectory() as tmp:
    mlflow.sklearn.save_model(
        model, f"{tmp}/model", signature=infer_signature(X, model.predict(X)), pip_requirements=["scikit-learn"]
    )
    mlflow.log_artifacts(f"{tmp}/model", "model")
print("accuracy", model.score(X, y))
