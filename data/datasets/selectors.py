"""Reads of datasets and versions, filtered by what the asking user may see (the
project's access rule: projects.selectors)."""

from dataclasses import dataclass
import re

from django.db.models import Count, Max, OuterRef, Prefetch, QuerySet, Subquery

from data.models import Dataset, DatasetAlias, DatasetVersion
from mlplatform.errors import NotFound, ValidationFailed
from mlplatform.models import User
from mlplatform.roles import Role
from projects.models import Project
from projects.selectors import project_get

SCHEME = "mlp-dataset://"
_HEX_RE = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class DatasetRef:
    project: str | None
    name: str
    ref: str  # a digest (or its prefix), an alias, or "latest"

    def uri(self, project: str) -> str:
        return f"{SCHEME}{self.project or project}/{self.name}@{self.ref}"


def parse_ref(text: str) -> DatasetRef:
    """`mlp-dataset://<project>/<name>@<ref>`, `<project>/<name>@<ref>` or `<name>[@<ref>]`;
    no ref means the latest version."""
    text = (text or "").strip()
    if text.startswith(SCHEME):
        text = text[len(SCHEME) :]
    path, _, ref = text.partition("@")
    project, _, name = path.rpartition("/")
    if not name or "/" in project:
        raise ValidationFailed(f"Not a dataset reference: '{text[:200]}'. Use [mlp-dataset://project/]name[@version].")
    return DatasetRef(project=project or None, name=name, ref=ref or "latest")


def dataset_list(*, project: Project) -> QuerySet[Dataset]:
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        Dataset.objects.filter(project=project)
        .annotate(
            version_count=Count("versions", distinct=True),
            last_version_at=Max("versions__created_at"),
            latest_digest=Subquery(latest.values("digest")[:1]),
            latest_rows=Subquery(latest.values("rows")[:1]),
        )
        .prefetch_related(Prefetch("aliases", queryset=DatasetAlias.objects.select_related("version")))
        .order_by("name")
    )


def dataset_get(*, user: User, project_slug: str, name: str, min_role: str = Role.VIEWER) -> Dataset:
    """The dataset if the user may see its project (NotFound otherwise, never telling
    whether it exists); PermissionDenied when they lack `min_role`."""
    project = project_get(user=user, slug=project_slug, min_role=min_role)
    dataset = Dataset.objects.select_related("project").filter(project=project, name=name).first()
    if dataset is None:
        raise NotFound(f"Dataset '{name}' not found in project '{project_slug}'.")
    dataset.project.my_role = project.my_role
    return dataset


def version_queryset() -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.select_related("dataset", "dataset__project", "created_by").prefetch_related(
        "aliases", "tags"
    )


def version_list(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return version_queryset().filter(dataset=dataset).order_by("-created_at", "-id")


def version_get(*, dataset: Dataset, ref: str) -> DatasetVersion:
    """A version by full id, unique id prefix (8+ hex digits), alias or `latest`."""
    ref = (ref or "").strip().lstrip("@") or "latest"
    qs = version_queryset().filter(dataset=dataset)
    if ref == "latest":
        version = qs.order_by("-created_at", "-id").first()
    else:
        version = qs.filter(aliases__alias=ref).first()
        if version is None and _HEX_RE.match(ref):
            matches = list(qs.filter(digest__startswith=ref)[:2])
            if len(matches) > 1:
                raise ValidationFailed(f"Version prefix '{ref}' is ambiguous; give more digits.")
            version = matches[0] if matches else None
    if version is None:
        raise NotFound(f"Dataset '{dataset.name}' has no version '{ref[:70]}'.")
    return version


def version_by_ref(*, user: User, text: str, project_slug: str | None = None) -> DatasetVersion:
    """The version a reference names, seen as `user`. A reference inside a project's
    context (a job, a run) naming another project is not found there."""
    ref = parse_ref(text)
    slug = ref.project or project_slug
    if slug is None:
        raise ValidationFailed("Name the project: mlp-dataset://<project>/<name>@<version>.")
    if project_slug is not None and ref.project is not None and ref.project != project_slug:
        raise NotFound(f"Dataset '{ref.name}' not found in project '{project_slug}'.")
    dataset = dataset_get(user=user, project_slug=slug, name=ref.name)
    return version_get(dataset=dataset, ref=ref.ref)


def versions_by_uri(*, project: Project, uris: list[str]) -> dict[str, DatasetVersion]:
    """Our versions that MLflow dataset sources name (exact digests, in this project)."""
    wanted = {}
    for uri in uris:
        try:
            ref = parse_ref(uri)
        except ValidationFailed:
            continue
        if ref.project == project.slug and len(ref.ref) == 64:
            wanted[uri] = (ref.name, ref.ref)
    if not wanted:
        return {}
    found = {
        (v.dataset.name, v.digest): v
        for v in version_queryset().filter(
            dataset__project=project,
            digest__in=[d for _, d in wanted.values()],
            dataset__name__in=[n for n, _ in wanted.values()],
        )
    }
    return {uri: found[key] for uri, key in wanted.items() if key in found}


def source_uris(source: str) -> list[str]:
    """The mlp-dataset:// URIs in an MLflow dataset source (JSON `{"uri": ...}`)."""
    import json

    try:
        data = json.loads(source)
    except ValueError:
        data = source
    values = data.values() if isinstance(data, dict) else [data]
    return [v for v in values if isinstance(v, str) and v.startswith(SCHEME)]


def input_versions(*, project: Project, inputs: list) -> dict[int, DatasetVersion]:
    """{dataset input pk: our version} for a run's MLflow dataset inputs that name one."""
    by_uri = {input.pk: source_uris(input.dataset.source) for input in inputs}
    found = versions_by_uri(project=project, uris=[u for uris in by_uri.values() for u in uris])
    return {pk: found[uris[0]] for pk, uris in by_uri.items() if uris and uris[0] in found}
