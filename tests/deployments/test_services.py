"""Endpoints and revisions through the services: deploy rules, gates, the status
machine, promotion and rollback, each audited and on the endpoint's timeline."""

import pytest

from deployments import links, services
from deployments.models import EndpointEvent, Revision, RevisionStatus, ServingConfig
from mlplatform.errors import InvalidState, NotFound, PermissionDenied
from mlplatform.models import AuditEvent
from tests.deployments.conftest import register_version
from tests.factories import UserFactory, make_project


@pytest.fixture
def gate_passed(monkeypatch):
    monkeypatch.setattr(links, "production_gate_passed", lambda *, project: True)


@pytest.fixture
def endpoint(project, user):
    return services.endpoint_create(project=project, actor=user, name="Iris API")[0]


def deploy(endpoint, user, version, **kwargs):
    name = f"{endpoint.project.slug}/{version.registered_model.name}"
    return services.revision_deploy(endpoint=endpoint, actor=user, model_name=name, version=version.version, **kwargs)


def config_version():
    return ServingConfig.objects.get(pk=1).version


def test_create_gives_a_token_once_and_stores_only_its_hash(project, user):
    endpoint, token = services.endpoint_create(project=project, actor=user, name="Iris API")
    assert endpoint.slug == "iris-api" and token.startswith("mlpe_")
    assert token not in endpoint.token_hash and len(endpoint.token_hash) == 64
    assert AuditEvent.objects.filter(action="endpoint.create", object_id=str(endpoint.pk)).exists()


def test_deploy_needs_the_production_gate(project, user, endpoint, model_dirs):
    version = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    with pytest.raises(PermissionDenied, match="Production gate"):
        deploy(endpoint, user, version)
    with pytest.raises(PermissionDenied, match="platform admin"):
        deploy(endpoint, user, version, gate_override_reason="trust me")
    admin = UserFactory(is_platform_admin=True)
    revision = deploy(endpoint, admin, version, gate_override_reason="pilot customer")
    assert revision.status == RevisionStatus.DEPLOYING and revision.model_version == version
    override = AuditEvent.objects.get(action="gate.override")
    assert override.actor == admin and override.reason == "pilot customer"


def test_deploy_a_version_of_another_project_is_not_found(user, endpoint, model_dirs, gate_passed):
    stranger = UserFactory()
    other = make_project(owner=stranger)
    version = register_version(project=other, user=stranger, model_dir=model_dirs["iris"])
    with pytest.raises(NotFound):
        services.revision_deploy(
            endpoint=endpoint, actor=user, model_name=f"{other.slug}/iris", version=version.version
        )


def test_champion_replace_retires_the_old_one_once_the_new_one_is_ready(
    project, user, endpoint, model_dirs, gate_passed
):
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    v2 = register_version(project=project, user=user, model_dir=model_dirs["iris2"])
    r1 = deploy(endpoint, user, v1)
    services.revision_report_load(revision_id=r1.pk, loaded=True)
    before = config_version()
    r2 = deploy(endpoint, user, v2)
    assert config_version() > before
    r1.refresh_from_db()
    assert r1.status == RevisionStatus.READY  # still answering until r2 is loaded
    services.revision_report_load(revision_id=r2.pk, loaded=True)
    services.revision_report_load(revision_id=r2.pk, loaded=True)  # every process reports; idempotent
    r1.refresh_from_db()
    endpoint.refresh_from_db()
    assert r1.status == RevisionStatus.RETIRED and endpoint.champion == r2
    kinds = list(EndpointEvent.objects.filter(endpoint=endpoint).values_list("kind", flat=True))
    assert kinds.count("deployed") == 2 and kinds.count("ready") == 2


def test_a_champion_that_fails_to_load_hands_back_to_the_previous_one(project, user, endpoint, model_dirs, gate_passed):
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    r1 = deploy(endpoint, user, v1)
    services.revision_report_load(revision_id=r1.pk, loaded=True)
    r2 = deploy(endpoint, user, v1)
    services.revision_report_load(revision_id=r2.pk, loaded=False, error="no MLmodel")
    endpoint.refresh_from_db()
    r2.refresh_from_db()
    assert endpoint.champion == r1 and r2.status == RevisionStatus.FAILED and r2.status_reason == "no MLmodel"


def test_canary_traffic_promote_and_rollback(project, user, endpoint, model_dirs, gate_passed):
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    v2 = register_version(project=project, user=user, model_dir=model_dirs["iris2"])
    with pytest.raises(InvalidState, match="champion before a challenger"):
        deploy(endpoint, user, v2, role="canary")
    r1 = deploy(endpoint, user, v1)
    canary = deploy(endpoint, user, v2, role="canary", traffic=0.2)
    endpoint.refresh_from_db()
    assert endpoint.challenger == canary and endpoint.traffic == 0.2 and endpoint.challenger_mode == "canary"
    services.traffic_set(endpoint=endpoint, actor=user, traffic=0.5, mode="shadow")
    endpoint.refresh_from_db()
    assert (endpoint.traffic, endpoint.challenger_mode) == (0.5, "shadow")
    with pytest.raises(InvalidState, match="only a ready challenger"):
        services.challenger_promote(endpoint=endpoint, actor=user)
    for revision in (r1, canary):
        services.revision_report_load(revision_id=revision.pk, loaded=True)
    services.challenger_promote(endpoint=endpoint, actor=user, reason="looks better")
    endpoint.refresh_from_db()
    r1.refresh_from_db()
    assert endpoint.champion == canary and endpoint.challenger is None and r1.status == RevisionStatus.RETIRED

    again = deploy(endpoint, user, v1, role="canary")
    services.revision_report_load(revision_id=again.pk, loaded=True)
    services.challenger_rollback(endpoint=endpoint, actor=user, reason="not today")
    again.refresh_from_db()
    assert again.status == RevisionStatus.ROLLED_BACK
    audit = AuditEvent.objects.filter(action="endpoint.rollback").first()
    assert audit.before["challenger"] == again.pk and audit.after["challenger"] is None


def test_champion_rollback_restores_the_previous_version_as_a_new_revision(
    project, user, endpoint, model_dirs, gate_passed
):
    v1 = register_version(project=project, user=user, model_dir=model_dirs["iris"])
    v2 = register_version(project=project, user=user, model_dir=model_dirs["iris2"])
    for version in (v1, v2):
        revision = deploy(endpoint, user, version)
        services.revision_report_load(revision_id=revision.pk, loaded=True)
    services.champion_rollback(endpoint=endpoint, actor=user, reason="bad numbers")
    endpoint.refresh_from_db()
    assert endpoint.champion.number == 3 and endpoint.champion.model_version == v1
    assert Revision.objects.get(endpoint=endpoint, number=2).status == RevisionStatus.ROLLED_BACK
