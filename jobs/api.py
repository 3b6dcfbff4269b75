"""REST API: /api/v1/jobs/ (submit, list, get, cancel, logs, rerun) and /api/v1/sweeps/."""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import selectors, services, spec
from jobs.models import Sweep
from mlplatform import jsondepth
from mlplatform.api.pagination import Pagination
from mlplatform.api.parsers import JSONParser
from mlplatform.errors import ValidationFailed
from mlplatform.roles import Role
from projects.selectors import project_get

JSON_FIELDS = ("command", "params", "env", "secret_env", "resources")


class JobOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    name = serializers.CharField()
    experiment_name = serializers.CharField()
    executor = serializers.CharField()
    image = serializers.CharField(source="image.name", allow_null=True, default=None)
    command = serializers.JSONField()
    has_script = serializers.SerializerMethodField()
    bundle_name = serializers.CharField()
    params = serializers.JSONField()
    env = serializers.JSONField()
    secret_env = serializers.SerializerMethodField(help_text="Names only; values never leave the server.")
    resources = serializers.SerializerMethodField()
    network = serializers.BooleanField()
    queue = serializers.CharField()
    max_retries = serializers.IntegerField()
    attempt = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()
    message = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField(allow_null=True)
    run_id = serializers.CharField()
    sweep = serializers.IntegerField(source="sweep_id", allow_null=True)
    rerun_of = serializers.IntegerField(source="rerun_of_id", allow_null=True)
    log_lines = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_has_script(self, job) -> bool:
        return bool(job.script)

    def get_secret_env(self, job) -> list[str]:
        return sorted(job.secret_env)

    def get_resources(self, job) -> dict:
        return {"cpus": job.cpus, "memory_mb": job.memory_mb, "gpus": job.gpus, "timeout_seconds": job.timeout_seconds}


class JobSpecIn(serializers.Serializer):
    """What a submission sets, and all a rerun may change."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    experiment_name = serializers.CharField(max_length=200, required=False, default="Default")
    executor = serializers.CharField(max_length=10, required=False, default="local")
    image = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    command = serializers.JSONField(required=False, help_text='Argument list, e.g. ["python", "train.py"].')
    script = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    params = serializers.JSONField(required=False)
    env = serializers.JSONField(required=False)
    secret_env = serializers.JSONField(required=False)
    resources = serializers.JSONField(required=False, help_text='e.g. {"cpus": 1, "memory": "512m", "timeout": 600}')
    network = serializers.BooleanField(required=False, default=False)
    queue = serializers.CharField(max_length=50, required=False, default="jobs")
    max_retries = serializers.IntegerField(required=False, default=1, min_value=0, max_value=5)


class JobIn(JobSpecIn):
    project = serializers.CharField(max_length=50)
    bundle = serializers.FileField(required=False, help_text="A zip or tar of the code (multipart).")


class RerunIn(serializers.Serializer):
    changes = serializers.JSONField(
        required=False,
        help_text="Submit fields to change (params and resources are merged), e.g. "
        '{"params": {"lr": 0.1}}. Secret values are kept only while the code, command, image '
        "and env stay the same, or for the secrets you entered yourself; give secret_env to enter them.",
    )


def rerun_changes(raw: object) -> dict:
    """`changes` checked as a submission's fields are (JobSpecIn); any other key (project,
    user, sweep, dispatch...) is refused rather than passed on."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed("changes must be an object of submit fields.")
    allowed = JobSpecIn().fields
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"changes: {', '.join(unknown)} cannot be changed in a rerun; allowed: {', '.join(sorted(allowed))}."
        )
    checked = JobSpecIn(data=raw, partial=True)
    if not checked.is_valid():
        raise serializers.ValidationError({"changes": checked.errors})
    return dict(checked.validated_data)


class LogLineOut(serializers.Serializer):
    seq = serializers.IntegerField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class SweepIn(serializers.Serializer):
    project = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=200)
    strategy = serializers.ChoiceField(choices=Sweep.Strategy.choices, default=Sweep.Strategy.GRID)
    space = serializers.JSONField()
    metric = serializers.CharField(max_length=250)
    goal = serializers.ChoiceField(choices=["max", "min"], default="max")
    trials = serializers.IntegerField(required=False, min_value=1, max_value=200)
    seed = serializers.IntegerField(required=False)
    max_concurrency = serializers.IntegerField(default=2, min_value=1, max_value=50)
    job = serializers.JSONField(help_text="Submit fields shared by every child (executor, script, command, ...).")


class SweepOut(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    name = serializers.CharField()
    strategy = serializers.CharField()
    space = serializers.JSONField()
    metric = serializers.CharField()
    goal = serializers.CharField()
    max_concurrency = serializers.IntegerField()
    parent_run_id = serializers.CharField()
    created_at = serializers.DateTimeField()


def decode_form_json(data) -> dict:
    """Multipart forms carry the structured fields as JSON text. A command that is not
    JSON stays a string, which the spec then refuses as a shell string."""
    values = {key: data.get(key) for key in data}
    for key in JSON_FIELDS:
        if isinstance(values.get(key), str) and values[key].strip():
            try:
                values[key] = jsondepth.loads(values[key])
            except jsondepth.TooDeep as exc:
                raise ValidationFailed(f"{key}: {exc}") from exc
            except ValueError as exc:
                if key != "command":
                    raise ValidationFailed(f"{key}: not valid JSON.") from exc
    return values


def read_bundle(upload) -> tuple[bytes | None, str]:
    if upload is None:
        return None, ""
    limit = spec.bundle_limit()
    if upload.size > limit:
        raise ValidationFailed(f"The bundle is {upload.size} bytes; the limit is {limit} bytes.")
    return upload.read(), upload.name


def submit_kwargs(validated: dict) -> dict:
    kwargs = {k: v for k, v in validated.items() if k not in ("project", "bundle")}
    kwargs["bundle"], kwargs["bundle_name"] = read_bundle(validated.get("bundle"))
    return kwargs


class JobListApi(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses=JobOut(many=True), operation_id="jobs_list")
    def get(self, request):
        slug = request.query_params.get("project")
        project = project_get(user=request.user, slug=slug) if slug else None
        jobs = selectors.job_list(user=request.user, project=project, status=request.query_params.get("status"))
        paginator = Pagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(JobOut(page, many=True).data)

    @extend_schema(request=JobIn, responses={201: JobOut}, operation_id="jobs_submit")
    def post(self, request):
        raw = decode_form_json(request.data) if request.content_type.startswith("multipart") else request.data
        data = JobIn(data=raw)
        data.is_valid(raise_exception=True)
        project = project_get(user=request.user, slug=data.validated_data["project"], min_role=Role.DATA_SCIENTIST)
        job = services.job_submit(project=project, user=request.user, **submit_kwargs(data.validated_data))
        return Response(JobOut(job).data, status=status.HTTP_201_CREATED)


class LimitsOut(serializers.Serializer):
    bundle_max_bytes = serializers.IntegerField(help_text="The largest code bundle a submit accepts.")


class JobLimitsApi(APIView):
    """What a client checks before it uploads (the `mlp` command refuses an oversized
    bundle without sending it)."""

    @extend_schema(responses=LimitsOut, operation_id="jobs_limits")
    def get(self, request):
        return Response(LimitsOut({"bundle_max_bytes": spec.bundle_limit()}).data)


class JobDetailApi(APIView):
    @extend_schema(responses=JobOut, operation_id="jobs_retrieve")
    def get(self, request, job_id: int):
        return Response(JobOut(selectors.job_get(user=request.user, job_id=job_id)).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOut, operation_id="jobs_cancel")
    def post(self, request, job_id: int):
        job = selectors.job_get(user=request.user, job_id=job_id, min_role=Role.DATA_SCIENTIST)
        return Response(JobOut(services.job_cancel(job=job, actor=request.user)).data)


class JobRerunApi(APIView):
    @extend_schema(request=RerunIn, responses={201: JobOut}, operation_id="jobs_rerun")
    def post(self, request, job_id: int):
        job = selectors.job_get(user=request.user, job_id=job_id, min_role=Role.DATA_SCIENTIST)
        data = RerunIn(data=request.data)
        data.is_valid(raise_exception=True)
        changes = rerun_changes(data.validated_data.get("changes"))
        new = services.job_rerun(job=job, user=request.user, changes=changes)
        return Response(JobOut(new).data, status=status.HTTP_201_CREATED)


class JobLogsApi(APIView):
    @extend_schema(responses=LogLineOut(many=True), operation_id="jobs_logs")
    def get(self, request, job_id: int):
        """Pages with `after` (the last seq seen) and `limit`; `?download=1` streams all
        of it as text."""
        job = selectors.job_get(user=request.user, job_id=job_id)
        if request.query_params.get("download"):
            response = StreamingHttpResponse(
                (line + "\n" for line in selectors.job_log_iter(job=job)), content_type="text/plain; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.log"'
            return response
        try:
            after = int(request.query_params.get("after", -1))
            limit = int(request.query_params.get("limit", 1000))
        except ValueError as exc:
            raise ValidationFailed("after and limit are whole numbers.") from exc
        lines = selectors.job_log_page(job=job, after=after, limit=limit)
        return Response(
            {
                "lines": LogLineOut(lines, many=True).data,
                "next_after": lines[-1].seq if lines else after,
                "total": job.log_lines,
                "finished": job.is_terminal,
            }
        )


class SweepListApi(APIView):
    @extend_schema(responses=SweepOut(many=True), operation_id="sweeps_list")
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.sweep_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(SweepOut(page, many=True).data)

    @extend_schema(request=SweepIn, responses={201: SweepOut}, operation_id="sweeps_submit")
    def post(self, request):
        data = SweepIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        project = project_get(user=request.user, slug=values.pop("project"), min_role=Role.DATA_SCIENTIST)
        job = values.pop("job")
        if not isinstance(job, dict):
            raise ValidationFailed("job must be an object of submit fields.")
        job = {k: v for k, v in job.items() if k in JobIn().fields and k not in ("project", "bundle")}
        sweep = services.sweep_submit(project=project, user=request.user, job=job, **values)
        return Response(SweepOut(sweep).data, status=status.HTTP_201_CREATED)


class SweepDetailApi(APIView):
    @extend_schema(responses=SweepOut, operation_id="sweeps_retrieve")
    def get(self, request, sweep_id: int):
        sweep = selectors.sweep_get(user=request.user, sweep_id=sweep_id)
        body = SweepOut(sweep).data
        body["children"] = [
            {"job": row["job"].pk, "status": row["job"].status, "params": row["params"], "metric": row["metric"]}
            | {"rank": row["rank"]}
            for row in selectors.sweep_children(sweep=sweep)
        ]
        return Response(body)
