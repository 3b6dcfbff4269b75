"""REST API /api/v1/projects/<slug>/datasets/: datasets, immutable versions (from an
upload, a stream window or a manifest), their data, profiles, aliases, tags and
lineage. Roles: viewers read, data scientists create versions and aliases, owners
delete. Another project's dataset is 404."""

from collections.abc import Iterator
from pathlib import Path
import tempfile

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from data.datasets import diff, lineage, openlineage, reader, selectors, services
from data.models import Stream, VersionStatus
from mlplatform.errors import ApplicationError, InvalidState, NotFound
from mlplatform.roles import Role
from projects.selectors import project_get


class TooLarge(ApplicationError):
    status_code = 413
    code = "too_large"


class DatasetAliasOut(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.CharField(source="version.digest")


class DatasetOut(serializers.Serializer):
    name = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    version_count = serializers.IntegerField(required=False)
    latest_version = serializers.CharField(source="latest_digest", allow_null=True, required=False)
    aliases = DatasetAliasOut(many=True, source="aliases.all")


class DatasetIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetVersionOut(serializers.Serializer):
    id = serializers.CharField(source="digest")
    uri = serializers.CharField()
    dataset = serializers.CharField(source="dataset.name")
    source = serializers.CharField()
    source_detail = serializers.DictField()
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    status = serializers.CharField()
    status_message = serializers.CharField()
    description = serializers.CharField()
    profile_status = serializers.CharField()
    schema = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()

    def get_schema(self, version) -> list[dict]:
        return (version.schema or {}).get("fields", [])

    def get_aliases(self, version) -> list[str]:
        return sorted(a.alias for a in version.aliases.all())

    def get_tags(self, version) -> dict[str, str]:
        return {t.key: t.value for t in version.tags.all()}


class DatasetVersionDetailOut(DatasetVersionOut):
    manifest = serializers.DictField()
    profile = serializers.DictField(allow_null=True)
    profile_message = serializers.CharField()


class DatasetVersionIn(serializers.Serializer):
    stream = serializers.CharField(required=False, help_text="A stream of the project (slug): a window of it.")
    start = serializers.DateTimeField(required=False, help_text="Window start (ingest time, inclusive).")
    end = serializers.DateTimeField(required=False, help_text="Window end (exclusive).")
    since_last = serializers.BooleanField(required=False, default=False)
    manifest = serializers.DictField(required=False, help_text="An explicit manifest (e.g. a job's output).")
    description = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if bool(attrs.get("stream")) == bool(attrs.get("manifest")):
            raise serializers.ValidationError("Give either a stream (with a window) or a manifest.")
        return attrs


class DatasetUploadIn(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=["csv", "parquet", "jsonl"], required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetAliasIn(serializers.Serializer):
    version = serializers.CharField(max_length=70)


class DatasetTagIn(serializers.Serializer):
    value = serializers.CharField(allow_blank=True, max_length=services.MAX_TAG_VALUE)


def _version_out(version, created: bool) -> Response:
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return Response(DatasetVersionOut(version).data, status=code)


class DatasetListApi(APIView):
    @extend_schema(responses=DatasetOut(many=True), operation_id="datasets_list")
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        return Response(DatasetOut(selectors.dataset_list(project=project), many=True).data)

    @extend_schema(request=DatasetIn, responses={201: DatasetOut}, operation_id="datasets_create")
    def post(self, request, slug: str):
        project = project_get(user=request.user, slug=slug, min_role=Role.DATA_SCIENTIST)
        data = DatasetIn(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_create(project=project, user=request.user, **data.validated_data)
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    @extend_schema(responses=DatasetOut, operation_id="datasets_retrieve")
    def get(self, request, slug: str, name: str):
        return Response(DatasetOut(selectors.dataset_get(user=request.user, project_slug=slug, name=name)).data)

    @extend_schema(responses={204: None}, operation_id="datasets_delete")
    def delete(self, request, slug: str, name: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name, min_role=Role.OWNER)
        services.dataset_delete(dataset=dataset, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListApi(APIView):
    @extend_schema(responses=DatasetVersionOut(many=True), operation_id="datasets_versions_list")
    def get(self, request, slug: str, name: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name)
        return Response(DatasetVersionOut(selectors.version_list(dataset=dataset), many=True).data)

    @extend_schema(
        request=DatasetVersionIn,
        responses={201: DatasetVersionOut, 200: DatasetVersionOut},
        operation_id="datasets_versions_create",
        description="A version from a stream window (`stream` with `start`/`end`, or `since_last`) or from an "
        "explicit manifest. The same data gives the same version: 200 with the existing one.",
    )
    def post(self, request, slug: str, name: str):
        project = project_get(user=request.user, slug=slug, min_role=Role.DATA_SCIENTIST)
        data = DatasetVersionIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values.get("manifest"):
            version, created = services.version_from_manifest(
                project=project,
                name=name,
                manifest=values["manifest"],
                user=request.user,
                description=values["description"],
            )
            return _version_out(version, created)
        stream = Stream.objects.filter(project=project, slug=values["stream"]).first()
        if stream is None:
            raise NotFound(f"Stream '{values['stream']}' not found in project '{slug}'.")
        version, created = services.version_from_stream(
            project=project,
            name=name,
            stream=stream,
            user=request.user,
            start=values.get("start"),
            end=values.get("end"),
            since_last=values["since_last"],
            description=values["description"],
        )
        return _version_out(version, created)


class VersionUploadApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": DatasetUploadIn},
        responses={201: DatasetVersionOut, 200: DatasetVersionOut},
        operation_id="datasets_versions_upload",
        description="Upload a CSV, Parquet or JSON Lines file (multipart field `file`): it is streamed to disk, "
        "converted to Parquet batch by batch and becomes a version. 413 over MLP_DATASET_UPLOAD_MAX_BYTES.",
    )
    def post(self, request, slug: str, name: str):
        project = project_get(user=request.user, slug=slug, min_role=Role.DATA_SCIENTIST)
        limit = settings.DATASET_UPLOAD_MAX_BYTES
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + 64 * 1024:
            raise TooLarge(f"The upload is over the limit of {limit} bytes.")
        data = DatasetUploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > limit:
            raise TooLarge(f"The file is {upload.size} bytes, over the limit of {limit}.")
        with _on_disk(upload) as path:
            version, created = services.version_from_upload(
                project=project,
                name=name,
                path=path,
                filename=upload.name,
                fmt=data.validated_data.get("format", ""),
                user=request.user,
                description=data.validated_data["description"],
            )
        return _version_out(version, created)


class _on_disk:
    """The uploaded file as a path: Django already spooled a large one to disk; a small
    one (kept in memory by Django) is written out."""

    def __init__(self, upload) -> None:
        self.upload, self.tmp = upload, None

    def __enter__(self) -> Path:
        if hasattr(self.upload, "temporary_file_path"):
            return Path(self.upload.temporary_file_path())
        self.tmp = tempfile.NamedTemporaryFile(prefix="mlp-upload-", delete=False)  # noqa: SIM115
        for chunk in self.upload.chunks():
            self.tmp.write(chunk)
        self.tmp.close()
        return Path(self.tmp.name)

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            Path(self.tmp.name).unlink(missing_ok=True)


class VersionDetailApi(APIView):
    @extend_schema(responses=DatasetVersionDetailOut, operation_id="datasets_versions_retrieve")
    def get(self, request, slug: str, name: str, ref: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name)
        return Response(DatasetVersionDetailOut(selectors.version_get(dataset=dataset, ref=ref)).data)

    @extend_schema(responses={204: None}, operation_id="datasets_versions_delete")
    def delete(self, request, slug: str, name: str, ref: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name, min_role=Role.OWNER)
        services.version_delete(version=selectors.version_get(dataset=dataset, ref=ref), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionDataApi(APIView):
    def perform_content_negotiation(self, request, force=False):
        # `format` names the data's format here, not one of DRF's renderers (errors
        # still answer in JSON).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["parquet", "csv"], description="Default parquet.")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        operation_id="datasets_versions_data",
    )
    def get(self, request, slug: str, name: str, ref: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name)
        version = selectors.version_get(dataset=dataset, ref=ref)
        fmt = request.query_params.get("format", "parquet")
        if fmt not in ("parquet", "csv"):
            raise serializers.ValidationError({"format": "parquet or csv."})
        version = services.version_check(version=version)
        if version.status == VersionStatus.BROKEN:
            raise InvalidState(f"Version {version.digest[:12]} is broken: {version.status_message}")
        body = reader.stream_parquet(version) if fmt == "parquet" else reader.stream_csv(version)
        response = StreamingHttpResponse(
            _streamed(body, request),
            content_type="application/vnd.apache.parquet" if fmt == "parquet" else "text/csv; charset=utf-8",
        )
        filename = f"{dataset.name}-{version.digest[:12]}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Dataset-Version"] = version.digest
        return response


def _streamed(body: Iterator[bytes], request):
    """Under ASGI Django would first collect a plain iterator into a list (the whole
    file in memory); an async iterator is sent chunk by chunk. The chunks are still
    made in the sync thread, where the database connection lives."""
    if not isinstance(getattr(request, "_request", request), ASGIRequest):
        return body

    async def chunks():
        done = object()
        while (chunk := await sync_to_async(next)(body, done)) is not done:
            yield chunk

    return chunks()


class AliasDetailApi(APIView):
    @extend_schema(request=DatasetAliasIn, responses=DatasetAliasOut, operation_id="datasets_aliases_set")
    def put(self, request, slug: str, name: str, alias: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name, min_role=Role.DATA_SCIENTIST)
        data = DatasetAliasIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = selectors.version_get(dataset=dataset, ref=data.validated_data["version"])
        link = services.alias_set(dataset=dataset, alias=alias, version=version, user=request.user)
        return Response(DatasetAliasOut(link).data)

    @extend_schema(responses={204: None}, operation_id="datasets_aliases_delete")
    def delete(self, request, slug: str, name: str, alias: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name, min_role=Role.DATA_SCIENTIST)
        services.alias_delete(dataset=dataset, alias=alias, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagDetailApi(APIView):
    @extend_schema(request=DatasetTagIn, responses=DatasetVersionOut, operation_id="datasets_versions_tags_set")
    def put(self, request, slug: str, name: str, ref: str, key: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name, min_role=Role.DATA_SCIENTIST)
        version = selectors.version_get(dataset=dataset, ref=ref)
        data = DatasetTagIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.tag_set(version=version, key=key, value=data.validated_data["value"], user=request.user)
        return Response(DatasetVersionOut(selectors.version_get(dataset=dataset, ref=version.digest)).data)

    @extend_schema(responses={204: None}, operation_id="datasets_versions_tags_delete")
    def delete(self, request, slug: str, name: str, ref: str, key: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name, min_role=Role.DATA_SCIENTIST)
        services.tag_delete(version=selectors.version_get(dataset=dataset, ref=ref), key=key, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionLineageApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="datasets_versions_lineage")
    def get(self, request, slug: str, name: str, ref: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name)
        version = selectors.version_get(dataset=dataset, ref=ref)
        return Response(lineage.version_graph(version=version).as_dict())


class LineageApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "node", str, required=True, description="`<kind>:<key>`, e.g. `version:<id>`, `run:<id>`."
            ),
            OpenApiParameter("hops", int, description="1-3 (default 2)."),
        ],
        responses=OpenApiTypes.OBJECT,
        operation_id="lineage_retrieve",
        description="The bounded neighbourhood of one node: stream → segment → dataset version → job/run → "
        "model version → endpoint revision → endpoint → prediction stream.",
    )
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        graph = lineage.neighbourhood(project=project, node=request.query_params.get("node", ""), hops=_hops(request))
        return Response(graph.as_dict())


def _hops(request) -> int:
    try:
        return int(request.query_params.get("hops", "2"))
    except ValueError as exc:
        raise serializers.ValidationError({"hops": "An integer, 1-3."}) from exc


class OpenLineageApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("node", str, required=True, description="`<kind>:<key>`, as for the lineage graph."),
            OpenApiParameter("hops", int, description="1-3 (default 2): the runs within this many hops."),
            OpenApiParameter("download", bool, description="Answer as an attachment (openlineage-<node kind>.json)."),
        ],
        responses=OpenApiTypes.OBJECT,
        operation_id="lineage_openlineage",
        description="OpenLineage RunEvents (spec 2-0-2) of the runs around one node: job = the run's experiment "
        "(and platform job), inputs = dataset versions (standard `version` facet), outputs = model versions; "
        "`mlp_` facets are described at /api/v1/lineage/openlineage/facets/. A JSON array, one event per run.",
    )
    def get(self, request, slug: str):
        project = project_get(user=request.user, slug=slug)
        events = openlineage.run_events(
            project=project,
            node=request.query_params.get("node", ""),
            hops=_hops(request),
            absolute=request.build_absolute_uri,
        )
        response = Response(events)
        if request.query_params.get("download") in ("1", "true"):
            kind = request.query_params["node"].partition(":")[0]
            response["Content-Disposition"] = f'attachment; filename="openlineage-{slug}-{kind}.json"'
        return response


class OpenLineageFacetsApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="lineage_openlineage_facets")
    def get(self, request):
        """The JSON Schema of the platform's `mlp_` OpenLineage facets."""
        return Response(openlineage.FACETS_SCHEMA)


class VersionDiffApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("against", str, required=True, description="The other version (id, prefix, alias).")
        ],
        responses=OpenApiTypes.OBJECT,
        operation_id="datasets_versions_diff",
        description="Schema changes, row counts and per-column distribution shift (PSI for numbers, Jensen-Shannon "
        "and chi-square for categories: the statistics of live drift monitoring) of `against` against this one.",
    )
    def get(self, request, slug: str, name: str, ref: str):
        dataset = selectors.dataset_get(user=request.user, project_slug=slug, name=name)
        base = selectors.version_get(dataset=dataset, ref=ref)
        other_ref = request.query_params.get("against", "")
        if not other_ref:
            raise serializers.ValidationError({"against": "Name the version to compare with."})
        other = selectors.version_get(dataset=dataset, ref=other_ref)
        for version in (base, other):
            services.version_check(version=version)
            if version.status == VersionStatus.BROKEN:
                raise InvalidState(f"Version {version.digest[:12]} is broken: {version.status_message}")
        return Response(diff.version_diff(base, other))
