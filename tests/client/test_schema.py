"""Every (method, path) the client calls exists on the server: /api/v1/ ones in the
generated OpenAPI schema, the MLflow-compatible and serving ones in the URL conf."""

from pathlib import Path
import re

from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator

from mlp_client.routes import ROUTES


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_api_v1_route_of_the_client_is_in_the_servers_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    served = {(method.upper(), normalise(path)) for path, ops in schema["paths"].items() for method in ops}
    missing = [
        (name, method, path)
        for name, (method, path) in ROUTES.items()
        if path.startswith("/api/v1/") and (method, normalise(path)) not in served
    ]
    assert not missing, f"the client calls what the server does not serve: {missing}"


def test_the_other_routes_resolve():
    for name, (_method, path) in ROUTES.items():
        if path.startswith("/api/v1/"):
            continue
        if path.startswith("/serve/"):
            # The serving data plane answers these before Django (mlplatform/asgi.py).
            from deployments.serving import app as serving

            assert path.endswith("/invocations") and '"invocations"' in Path(serving.__file__).read_text()
            continue
        if path.startswith("/ingest/"):
            # So does the HTTP ingest plane: POST /ingest/<project>/<stream>.
            from data import plane
            from mlplatform import asgi

            assert path.count("/") == 3 and 'prefix: str = "/ingest"' in Path(plane.__file__).read_text()
            assert 'startswith("/ingest/")' in Path(asgi.__file__).read_text()
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        try:
            resolve(concrete)
        except Resolver404:
            raise AssertionError(f"{name}: {path} is not served")


def test_a_drifted_route_would_be_caught():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    served = {normalise(path) for path in schema["paths"]}
    assert normalise("/api/v1/jobs/{job_id}/") in served
    assert normalise("/api/v1/jobs/{job_id}/restart/") not in served
