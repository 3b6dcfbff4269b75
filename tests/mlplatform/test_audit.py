from django.db import DatabaseError, transaction
from django.test import Client
import pytest

from mlplatform.models import AuditEvent
from projects import services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


def test_every_project_change_leaves_an_audit_event(user, other_user):
    project = make_project(owner=user)
    services.project_update(project=project, actor=user, description="new text")
    services.membership_add(project=project, username=other_user.username, role="viewer", actor=user)
    services.membership_change_role(project=project, username=other_user.username, role="stakeholder", actor=user)
    services.membership_remove(project=project, username=other_user.username, actor=user)
    actions = list(AuditEvent.objects.filter(project_id=project.pk).order_by("id").values_list("action", flat=True))
    assert actions == [
        "project.create",
        "project.update",
        "membership.add",
        "membership.change_role",
        "membership.remove",
    ]
    update = AuditEvent.objects.get(action="project.update")
    assert update.before["description"] == "" and update.after["description"] == "new text"
    assert update.actor == user and update.actor_name == user.username


def test_audit_events_cannot_be_updated_or_deleted_even_in_sql(user):
    make_project(owner=user)
    event = AuditEvent.objects.first()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.action == "project.create"


def test_admin_cannot_edit_or_delete_audit_events():
    admin = UserFactory(is_superuser=True, is_staff=True)
    make_project(owner=admin)
    event = AuditEvent.objects.first()
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/mlplatform/auditevent/").status_code == 200
    view = client.get(f"/admin/mlplatform/auditevent/{event.pk}/change/")
    assert view.status_code == 200 and b'name="_save"' not in view.content
    assert client.post(f"/admin/mlplatform/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert client.post(f"/admin/mlplatform/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/mlplatform/auditevent/add/").status_code == 403
    event.refresh_from_db()
    assert event.action == "project.create"


def test_admin_changes_are_audited():
    admin = UserFactory(is_superuser=True, is_staff=True)
    target = UserFactory()
    client = Client()
    client.force_login(admin)
    response = client.post(
        f"/admin/mlplatform/user/{target.pk}/change/",
        {
            "username": target.username,
            "email": "changed@example.com",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "display_name": "",
            "is_platform_admin": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="admin.change")
    assert event.actor == admin and "is_platform_admin" in event.after
