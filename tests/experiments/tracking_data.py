"""Experiments with runs, built through the services, for the REST API and page tests."""

from experiments import services
from experiments.artifacts import get_store, run_root


def make_experiment(project, user, name="exp", n_runs=3, with_children=False):
    """An experiment whose run i has params lr=str(i/10), model in (rf, lr), metrics
    acc=i/n (three steps) and loss, and a tag; returns (experiment, runs)."""
    experiment = services.experiment_get_or_create(project=project, name=name, user=user)
    runs = []
    for i in range(n_runs):
        run = services.run_create(experiment=experiment, user=user, name=f"run-{i}", start_time=1_700_000_000_000 + i)
        services.run_log_batch(
            run=run,
            params={"lr": str(i / 10), "model": "rf" if i % 2 else "lr"},
            metrics=[("acc", i / max(1, n_runs) * s / 2, s, 1_700_000_000_000 + s) for s in range(3)]
            + [("loss", 1.0 - i / max(1, n_runs), 0, 1_700_000_000_000)],
            tags={"team": "blue"},
        )
        services.run_update(run=run, status="FINISHED", end_time=run.start_time + 65_000)
        runs.append(run)
    if with_children and runs:
        child = services.run_create(experiment=experiment, user=user, name="child", parent_run=runs[0])
        runs.append(child)
    return experiment, runs


def put_artifact(run, path: str, data: bytes) -> None:
    get_store().write(run_root(run), path, [data])
