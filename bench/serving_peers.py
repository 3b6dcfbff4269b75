"""The serving peers for bench/serving.py: their venvs, model files and start commands.

Each peer runs in its own venv (never the project's), created on first use under
MLP_BENCH_VENVS (default ~/.cache/mlp-bench) with pinned versions, and serves the
same model with its own runtime:

- MLServer 1.7.1: mlserver-sklearn (the forest), mlserver-mlflow (the wrapped pyfunc
  model), mlserver-lightgbm (the booster); adaptive batching as in the issue
  (max_batch_size 32, max_batch_time 5 ms) and, for the forest, without it too.
  MLServer needs uvloop < 0.22 beside it.
- BentoML 1.4.40: one service per model; batching (`batchable=True`) needs array input.
- KServe 0.21.0 (its Python model server, `kserve.ModelServer`): a `kserve.Model`
  subclass per model, V1 protocol (`{"instances": ...}`) as its sklearn server answers.

A peer that cannot be installed or started keeps its rows in the table with the reason."""

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import subprocess
import sys

VENVS = Path(os.environ.get("MLP_BENCH_VENVS", Path.home() / ".cache" / "mlp-bench"))
PYTHON = os.environ.get("MLP_BENCH_PEER_PYTHON", "python3.11")
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
PACKAGES = {
    "mlserver": [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        "mlserver-lightgbm==1.7.1",
        "mlserver-mlflow==1.7.1",
        "uvloop<0.22",
        "scikit-learn==1.9.1",
        "lightgbm==4.7.0",
    ],
    "bentoml": ["bentoml==1.4.40", "scikit-learn==1.9.1", "lightgbm==4.7.0", "mlflow-skinny==3.17.2", "pandas==3.1.1"],
    "kserve": ["kserve==0.21.0", "scikit-learn==1.9.1", "lightgbm==4.7.0", "mlflow-skinny==3.17.2"],
}


def ensure_venv(name: str) -> tuple[Path | None, str]:
    """(the venv's python, "") or (None, why not)."""
    venv = VENVS / name
    marker = venv / "bench-packages.json"
    wanted = json.dumps(PACKAGES[name])
    python = venv / "bin" / "python"
    if marker.is_file() and marker.read_text() == wanted and python.exists():
        return python, ""
    try:
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PACKAGES[name]], check=True, capture_output=True, text=True
        )
    except FileNotFoundError as exc:
        return None, f"cannot create its venv: {exc}"
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        return None, f"pip install {' '.join(PACKAGES[name])} failed: {last[0][:200]}"
    marker.write_text(wanted)
    return python, ""


@dataclass
class Peer:
    """One server of one peer for one model: how to start it and what to send."""

    label: str
    venv: str
    model: str
    command: list[str]
    ready_path: str
    url_path: str
    request: str  # "mlserver-tensor", "mlserver-pd", "bento", "kserve-v1"
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


BENTO_SERVICE = """
import os

import bentoml
import numpy as np

KIND, PATH, BATCH = os.environ["BENCH_KIND"], os.environ["BENCH_MODEL"], os.environ.get("BENCH_BATCH") == "1"
COLUMNS = {columns!r}


def load():
    if KIND == "forest":
        import joblib

        return joblib.load(PATH).predict
    if KIND == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=PATH).predict
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(PATH)
    return lambda X: np.asarray(model.predict(pd.DataFrame(X, columns=COLUMNS)))


@bentoml.service(workers=1)
class Model:
    def __init__(self) -> None:
        self.fn = load()

    if BATCH:

        @bentoml.api(batchable=True, max_batch_size=32)
        def predict(self, input: np.ndarray) -> np.ndarray:
            return np.asarray(self.fn(input))

    else:

        @bentoml.api
        def predict(self, input: np.ndarray) -> np.ndarray:
            return np.asarray(self.fn(input))
"""

KSERVE_SERVER = """
import os

import kserve
import numpy as np

KIND, PATH = os.environ["BENCH_KIND"], os.environ["BENCH_MODEL"]
COLUMNS = {columns!r}


def load():
    if KIND == "forest":
        import joblib

        return joblib.load(PATH).predict
    if KIND == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=PATH).predict
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(PATH)
    return lambda X: np.asarray(model.predict(pd.DataFrame(X, columns=COLUMNS)))


class Model(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.fn = load()
        self.ready = True

    def predict(self, payload, headers=None, response_headers=None):
        X = np.asarray(payload["instances"], dtype=np.float64)
        return {{"predictions": np.asarray(self.fn(X)).tolist()}}


if __name__ == "__main__":
    kserve.ModelServer().start([Model("m")])
"""


def mlserver_repo(work: Path, model: str, files: dict[str, Path], *, batching: bool, port: int) -> Path:
    repo = work / f"mlserver-{model}-{'batch' if batching else 'plain'}"
    (repo / "m").mkdir(parents=True, exist_ok=True)
    settings = {"http_port": port, "grpc_port": port + 1, "metrics_port": port + 2, "debug": False}
    (repo / "settings.json").write_text(json.dumps(settings))
    implementation, uri = {
        "forest": ("mlserver_sklearn.SKLearnModel", str(files["forest_joblib"])),
        "pyfunc": ("mlserver_mlflow.MLflowRuntime", str(files["pyfunc"])),
        "lightgbm": ("mlserver_lightgbm.LightGBMModel", str(files["lightgbm_txt"])),
    }[model]
    model_settings: dict = {"name": "m", "implementation": implementation, "parameters": {"uri": uri}}
    if batching:
        model_settings.update(max_batch_size=32, max_batch_time=0.005)
    (repo / "m" / "model-settings.json").write_text(json.dumps(model_settings))
    return repo


def peers(work: Path, files: dict[str, Path], ports: dict[str, int]) -> list[Peer]:
    """Every peer server, in the order they run."""
    model_paths = {"forest": files["forest_joblib"], "pyfunc": files["pyfunc"], "lightgbm": files["lightgbm_txt"]}
    out: list[Peer] = []
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    for model, directory in (("forest", files["forest"]), ("pyfunc", files["pyfunc"])):
        out.append(
            Peer(
                label="mlflow models serve",
                venv="",
                model=model,
                command=[mlflow_bin, "models", "serve", "-m", str(directory), "--env-manager", "local"]
                + ["-h", "127.0.0.1", "-p", str(ports["mlflow"])],
                ready_path=f":{ports['mlflow']}/ping",
                url_path=f":{ports['mlflow']}/invocations",
                request="mlflow",
                # mlflow execs `uvicorn` by name; MLflow 3 also refuses skops without the flag.
                env={
                    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                },
            )
        )
    for model in ("forest", "pyfunc", "lightgbm"):
        for batching in (True, False) if model == "forest" else (True,):
            port = ports["mlserver"]
            repo = mlserver_repo(work, model, files, batching=batching, port=port)
            out.append(
                Peer(
                    label=f"MLServer{' batching' if batching else ''}",
                    venv="mlserver",
                    model=model,
                    command=["{bin}/mlserver", "start", str(repo)],
                    ready_path=f":{port}/v2/models/m/ready",
                    url_path=f":{port}/v2/models/m/infer",
                    request="mlserver-pd" if model == "pyfunc" else "mlserver-tensor",
                )
            )
    service_dir = work / "bento"
    service_dir.mkdir(exist_ok=True)
    (service_dir / "service.py").write_text(BENTO_SERVICE.format(columns=COLUMNS))
    for model in ("forest", "pyfunc", "lightgbm"):
        for batching in (True, False) if model == "forest" else (True,):
            port = ports["bentoml"]
            out.append(
                Peer(
                    label=f"BentoML{' batching' if batching else ''}",
                    venv="bentoml",
                    model=model,
                    command=["{bin}/bentoml", "serve", "service:Model", "--host", "127.0.0.1", "--port", str(port)],
                    ready_path=f":{port}/readyz",
                    url_path=f":{port}/predict",
                    request="bento",
                    cwd=service_dir,
                    env={
                        "BENCH_KIND": model,
                        "BENCH_MODEL": str(model_paths[model]),
                        "BENCH_BATCH": "1" if batching else "0",
                        "BENTOML_HOME": str(work / "bentoml-home"),
                        "BENTOML_DO_NOT_TRACK": "true",
                    },
                )
            )
    (work / "kserve_server.py").write_text(KSERVE_SERVER.format(columns=COLUMNS))
    for model in ("forest", "pyfunc", "lightgbm"):
        port = ports["kserve"]
        out.append(
            Peer(
                label="KServe",
                venv="kserve",
                model=model,
                command=["{bin}/python", str(work / "kserve_server.py"), "--http_port", str(port)]
                + ["--grpc_port", str(port + 1), "--enable_grpc", "false"],
                ready_path=f":{port}/v1/models/m",
                url_path=f":{port}/v1/models/m:predict",
                request="kserve-v1",
                env={"BENCH_KIND": model, "BENCH_MODEL": str(model_paths[model])},
            )
        )
    return out
