"""REST API /api/v1/: experiments, runs (search with MLflow's filter language, compare,
CSV export), metric histories and artifacts. Read-only: runs are written through the
MLflow-compatible API (/api/2.0/mlflow/...), which the `mlflow` client speaks."""

import math

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import selectors, selectors_ui, series
from experiments.artifacts_ui import artifact_download, artifact_list
from experiments.export import runs_csv_response
from mlplatform.api.pagination import Pagination
from mlplatform.errors import ValidationFailed
from projects.selectors import project_get


def json_number(value: float | None) -> float | str | None:
    """NaN and infinities are kept (MLflow keeps them) but JSON has no literal for them."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _int_param(request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"'{name}' must be an integer, got '{raw[:50]}'.")


class ExperimentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    lifecycle_stage = serializers.CharField()
    artifact_location = serializers.CharField()
    creation_time = serializers.IntegerField()
    last_update_time = serializers.IntegerField()
    run_count = serializers.IntegerField(required=False)
    last_run_time = serializers.IntegerField(required=False, allow_null=True)


class RunRowOut(serializers.Serializer):
    run_id = serializers.CharField(source="pk")
    run_name = serializers.CharField(source="name")
    experiment_id = serializers.IntegerField()
    status = serializers.CharField()
    user = serializers.CharField(source="display_user")
    start_time = serializers.IntegerField()
    end_time = serializers.IntegerField(allow_null=True)
    lifecycle_stage = serializers.CharField()
    parent_run_id = serializers.CharField(allow_null=True)
    values = serializers.SerializerMethodField(help_text="Chosen columns: {'metrics.acc': 0.9, 'params.lr': '0.1'}")

    @extend_schema_field(serializers.DictField())
    def get_values(self, run) -> dict:
        return {k: json_number(v) if isinstance(v, float) else v for k, v in run.cells.items()}


class RunsPageOut(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    columns = serializers.ListField(child=serializers.CharField())
    metric_keys = serializers.ListField(child=serializers.CharField())
    param_keys = serializers.ListField(child=serializers.CharField())
    results = RunRowOut(many=True)


class KeyValueOut(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()


class LatestMetricOut(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.SerializerMethodField()
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField()

    def get_value(self, lm) -> float | str:
        return json_number(selectors_ui.metric_value(lm))


class DatasetInputOut(serializers.Serializer):
    name = serializers.CharField(source="dataset.name")
    digest = serializers.CharField(source="dataset.digest")
    source_type = serializers.CharField(source="dataset.source_type")
    source = serializers.CharField(source="dataset.source")
    context = serializers.SerializerMethodField()

    def get_context(self, di) -> str:
        return (di.tags or {}).get("mlflow.data.context", "")


class RunDetailOut(serializers.Serializer):
    run = RunRowOut()
    artifact_uri = serializers.CharField(source="run.artifact_uri")
    params = KeyValueOut(many=True)
    tags = KeyValueOut(many=True)
    metrics = LatestMetricOut(many=True)
    datasets = DatasetInputOut(many=True)
    child_run_ids = serializers.SerializerMethodField()

    def get_child_run_ids(self, detail) -> list[str]:
        return [c.pk for c in detail.children]


class MetricPointOut(serializers.Serializer):
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField()
    value = serializers.FloatField()


class FileInfoOut(serializers.Serializer):
    path = serializers.CharField()
    is_dir = serializers.BooleanField()
    file_size = serializers.IntegerField(allow_null=True)


class CompareRunOut(serializers.Serializer):
    run_id = serializers.CharField(source="pk")
    run_name = serializers.CharField(source="name")
    experiment_id = serializers.IntegerField()
    status = serializers.CharField()
    params = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()

    def get_params(self, run) -> dict[str, str]:
        return {p.key: p.value for p in run.col_params}

    def get_metrics(self, run) -> dict[str, float | str]:
        return {lm.key: json_number(selectors_ui.metric_value(lm)) for lm in run.col_metrics}


class CompareOut(serializers.Serializer):
    metric_keys = serializers.ListField(child=serializers.CharField())
    param_keys = serializers.ListField(child=serializers.CharField())
    runs = CompareRunOut(many=True)


TABLE_PARAMETERS = [
    OpenApiParameter("filter", str, description="MLflow search filter, e.g. `metrics.acc > 0.9 AND params.lr = '0.1'`"),
    OpenApiParameter("order_by", str, description="e.g. `metrics.acc DESC` or `attributes.start_time ASC`"),
    OpenApiParameter("columns", str, many=True, description="`metrics.<key>`, `params.<key>` or `tags.<key>`"),
    OpenApiParameter("view_type", str, enum=["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]),
]


def table_args(request) -> dict:
    return {
        "filter_string": request.query_params.get("filter", ""),
        "order_by": request.query_params.get("order_by", ""),
        "columns": request.query_params.getlist("columns"),
        "view_type": request.query_params.get("view_type") or "ACTIVE_ONLY",
    }


class ExperimentListApi(APIView):
    @extend_schema(
        responses=ExperimentOut(many=True),
        parameters=[OpenApiParameter("project", str, description="Only this project's experiments (slug).")],
        operation_id="experiments_list",
    )
    def get(self, request):
        slug = request.query_params.get("project")
        project = project_get(user=request.user, slug=slug) if slug else None
        paginator = Pagination()
        page = paginator.paginate_queryset(
            selectors_ui.experiment_overview(user=request.user, project=project), request, view=self
        )
        return paginator.get_paginated_response(ExperimentOut(page, many=True).data)


class ExperimentDetailApi(APIView):
    @extend_schema(responses=ExperimentOut, operation_id="experiments_retrieve")
    def get(self, request, experiment_id: int):
        return Response(ExperimentOut(selectors.experiment_get(user=request.user, experiment_id=experiment_id)).data)


class RunSearchApi(APIView):
    @extend_schema(
        responses=RunsPageOut,
        parameters=[*TABLE_PARAMETERS, OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        operation_id="experiments_runs_search",
    )
    def get(self, request, experiment_id: int):
        table = selectors_ui.runs_table(
            user=request.user,
            experiment_id=experiment_id,
            page=_int_param(request, "page", 1),
            page_size=_int_param(request, "page_size", selectors_ui.DEFAULT_PAGE_SIZE),
            **table_args(request),
        )
        return Response(
            RunsPageOut(
                {
                    "count": table.total,
                    "page": table.page,
                    "page_size": table.page_size,
                    "columns": [c.name for c in table.columns],
                    "metric_keys": table.metric_keys,
                    "param_keys": table.param_keys,
                    "results": table.runs,
                }
            ).data
        )


class ColumnOut(serializers.Serializer):
    name = serializers.CharField(help_text="metrics.<key> or params.<key>, as the columns parameter takes it.")
    kind = serializers.CharField()
    key = serializers.CharField()


class ExperimentColumnsApi(APIView):
    @extend_schema(
        responses=ColumnOut(many=True),
        parameters=[
            OpenApiParameter("q", str, description="Text the key contains (any case); empty lists the first keys."),
            OpenApiParameter("limit", int, description="At most this many of each kind, 1 to 200 (default 50)."),
        ],
        operation_id="experiments_columns_search",
        description="The experiment's metric and param keys that contain q, in key order: the runs "
        "table's column chooser searches them as you type.",
    )
    def get(self, request, experiment_id: int):
        columns = selectors_ui.experiment_column_search(
            user=request.user,
            experiment_id=experiment_id,
            contains=request.query_params.get("q", "").strip(),
            limit=_int_param(request, "limit", 50),
        )
        return Response(ColumnOut(columns, many=True).data)


class RunExportApi(APIView):
    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.STR},
        parameters=TABLE_PARAMETERS,
        operation_id="experiments_runs_export_csv",
        description="Every matching run as CSV (same filter, order and columns as the search).",
    )
    def get(self, request, experiment_id: int):
        table = selectors_ui.runs_for_export(user=request.user, experiment_id=experiment_id, **table_args(request))
        return runs_csv_response(table)


class RunDetailApi(APIView):
    @extend_schema(responses=RunDetailOut, operation_id="runs_retrieve")
    def get(self, request, run_id: str):
        detail = selectors_ui.run_detail(user=request.user, run_id=run_id, histories=False)
        detail.run.cells = {}  # the detail lists every value below instead
        detail.run.display_user = selectors_ui.run_user(detail.run)
        return Response(RunDetailOut(detail).data)


class MetricHistoryApi(APIView):
    @extend_schema(
        responses=MetricPointOut(many=True),
        parameters=[OpenApiParameter("key", str, required=True)],
        operation_id="runs_metric_history",
    )
    def get(self, request, run_id: str):
        key = request.query_params.get("key", "")
        if not key:
            raise ValidationFailed("Give the metric's key: ?key=<metric key>.")
        points, _ = selectors.metric_history(user=request.user, run_id=run_id, key=key)
        return Response(
            [
                {"step": step, "timestamp": ts, "value": json_number(math.nan if is_nan else value)}
                for _key, value, is_nan, step, ts in points
            ]
        )


class SeriesOut(serializers.Serializer):
    run_id = serializers.CharField()
    count = serializers.IntegerField(help_text="Points in the step range before downsampling.")
    sampled = serializers.BooleanField()
    steps = serializers.SerializerMethodField()
    timestamps = serializers.SerializerMethodField()
    values = serializers.SerializerMethodField(help_text="NaN and infinities as null.")

    def get_steps(self, series) -> list[int]:
        return [p[0] for p in series.points]

    def get_timestamps(self, series) -> list[int]:
        return [p[1] for p in series.points]

    def get_values(self, series) -> list[float | None]:
        return [p[2] if math.isfinite(p[2]) else None for p in series.points]


class MetricSeriesApi(APIView):
    @extend_schema(
        responses=SeriesOut(many=True),
        parameters=[
            OpenApiParameter("run_ids", str, many=True, required=True, description="1 to 100 run ids."),
            OpenApiParameter("key", str, required=True),
            OpenApiParameter("min_step", int),
            OpenApiParameter("max_step", int),
            OpenApiParameter("max_points", int, description="Per run, 40 to 5000 (default 5000)."),
        ],
        operation_id="runs_metric_series",
        description="One metric of several runs for a chart: whole when short, else downsampled in the "
        "database to each step bucket's first, last, lowest and highest point; a step range gives a "
        "zoomed window at full resolution up to max_points.",
    )
    def get(self, request):
        def optional(name: str) -> int | None:
            return _int_param(request, name, None) if request.query_params.get(name) else None

        found = series.series_for_runs(
            user=request.user,
            run_ids=[i for value in request.query_params.getlist("run_ids") for i in value.split(",")],
            key=request.query_params.get("key", ""),
            min_step=optional("min_step"),
            max_step=optional("max_step"),
            max_points=optional("max_points"),
        )
        return Response(SeriesOut(found, many=True).data)


class ArtifactListApi(APIView):
    @extend_schema(
        responses=FileInfoOut(many=True),
        parameters=[OpenApiParameter("path", str, description="A directory inside the run's artifacts.")],
        operation_id="runs_artifacts_list",
    )
    def get(self, request, run_id: str):
        run = selectors.run_get(user=request.user, run_id=run_id)
        return Response(FileInfoOut(artifact_list(run=run, path=request.query_params.get("path", "")), many=True).data)


class ArtifactDownloadApi(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("path", str, required=True)],
        operation_id="runs_artifacts_download",
    )
    def get(self, request, run_id: str):
        run = selectors.run_get(user=request.user, run_id=run_id)
        return artifact_download(run=run, path=request.query_params.get("path", ""))


class RunCompareApi(APIView):
    @extend_schema(
        responses=CompareOut,
        parameters=[OpenApiParameter("run_ids", str, many=True, required=True, description="2 to 100 run ids.")],
        operation_id="runs_compare",
    )
    def get(self, request):
        ids = [i for value in request.query_params.getlist("run_ids") for i in value.split(",")]
        comparison = selectors_ui.runs_compare(user=request.user, run_ids=ids)
        return Response(CompareOut(comparison).data)
