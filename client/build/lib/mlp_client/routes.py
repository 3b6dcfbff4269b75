"""Every (method, path) the client calls. A test generates the server's OpenAPI schema
and checks each /api/v1/ pair is in it (and that the others resolve), so the client and
the server cannot drift apart unnoticed."""

ROUTES: dict[str, tuple[str, str]] = {
    "me": ("GET", "/api/v1/me/"),
    "projects.list": ("GET", "/api/v1/projects/"),
    "projects.get": ("GET", "/api/v1/projects/{slug}/"),
    "projects.kpis": ("GET", "/api/v1/projects/{slug}/kpis/"),
    "kpis.record": ("POST", "/api/v1/kpis/{kpi_id}/values/"),
    "jobs.list": ("GET", "/api/v1/jobs/"),
    "jobs.submit": ("POST", "/api/v1/jobs/"),
    "jobs.limits": ("GET", "/api/v1/jobs/limits/"),
    "jobs.get": ("GET", "/api/v1/jobs/{job_id}/"),
    "jobs.cancel": ("POST", "/api/v1/jobs/{job_id}/cancel/"),
    "jobs.rerun": ("POST", "/api/v1/jobs/{job_id}/rerun/"),
    "jobs.logs": ("GET", "/api/v1/jobs/{job_id}/logs/"),
    "sweeps.submit": ("POST", "/api/v1/sweeps/"),
    "sweeps.get": ("GET", "/api/v1/sweeps/{sweep_id}/"),
    "experiments.list": ("GET", "/api/v1/experiments/"),
    "runs.search": ("GET", "/api/v1/experiments/{experiment_id}/runs/"),
    "runs.get": ("GET", "/api/v1/runs/{run_id}/"),
    "runs.compare": ("GET", "/api/v1/runs/compare/"),
    "models.list": ("GET", "/api/v1/models/"),
    "models.get": ("GET", "/api/v1/projects/{slug}/models/{name}/"),
    "models.alias": ("PUT", "/api/v1/projects/{slug}/models/{name}/aliases/{alias}/"),
    "endpoints.list": ("GET", "/api/v1/endpoints/"),
    "endpoints.get": ("GET", "/api/v1/endpoints/{slug}/"),
    "endpoints.deploy": ("POST", "/api/v1/endpoints/{slug}/revisions/"),
    "endpoints.promote": ("POST", "/api/v1/endpoints/{slug}/promote/"),
    "endpoints.rollback": ("POST", "/api/v1/endpoints/{slug}/rollback/"),
    "gates.list": ("GET", "/api/v1/projects/{slug}/gates/"),
    "gates.get": ("GET", "/api/v1/gates/{gate_id}/"),
    "gates.review": ("POST", "/api/v1/gates/{gate_id}/review/"),
    "gates.evidence": ("POST", "/api/v1/gates/{gate_id}/evidence/"),
    "gates.vote": ("POST", "/api/v1/gates/{gate_id}/votes/"),
    "gates.decide": ("POST", "/api/v1/gates/{gate_id}/decision/"),
    # Outside /api/v1/: the MLflow-compatible registry (models are registered the way
    # the `mlflow` client does it) and the serving data plane.
    "mlflow.registered_models.create": ("POST", "/api/2.0/mlflow/registered-models/create"),
    "mlflow.model_versions.create": ("POST", "/api/2.0/mlflow/model-versions/create"),
    "serve.invocations": ("POST", "/serve/{slug}/invocations"),
}
