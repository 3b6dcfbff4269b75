import pytest

from mlplatform.errors import AlreadyExists, NotFound, ValidationFailed
from mlplatform.roles import Role
from projects import selectors, services
from projects.models import Membership, Project
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_create_makes_the_creator_owner(user):
    project = services.project_create(owner=user, name="Pump failures")
    assert project.slug == "pump-failures"
    assert Membership.objects.get(project=project, user=user).role == Role.OWNER


def test_duplicate_slug_is_refused_and_nothing_saved(user):
    services.project_create(owner=user, name="A", slug="same")
    with pytest.raises(AlreadyExists):
        services.project_create(owner=user, name="B", slug="same")
    assert Project.objects.count() == 1


@pytest.mark.parametrize("slug", ["Upper", "-lead", "sp ace", "a" * 51, "../x"])
def test_bad_slugs_are_refused(user, slug):
    with pytest.raises(ValidationFailed):
        services.project_create(owner=user, name="A", slug=slug)


def test_last_owner_cannot_leave_or_be_demoted(user):
    project = make_project(owner=user)
    with pytest.raises(ValidationFailed):
        services.membership_remove(project=project, username=user.username, actor=user)
    with pytest.raises(ValidationFailed):
        services.membership_change_role(project=project, username=user.username, role=Role.VIEWER, actor=user)


def test_members_unknown_users_and_duplicates(user, other_user):
    project = make_project(owner=user)
    with pytest.raises(ValidationFailed, match="no user named"):
        services.membership_add(project=project, username="ghost", role=Role.VIEWER, actor=user)
    services.membership_add(project=project, username=other_user.username, role=Role.VIEWER, actor=user)
    with pytest.raises(AlreadyExists):
        services.membership_add(project=project, username=other_user.username, role=Role.OWNER, actor=user)
    with pytest.raises(ValidationFailed, match="Unknown role"):
        services.membership_change_role(project=project, username=other_user.username, role="god", actor=user)


def test_non_members_do_not_see_a_project(user, other_user):
    project = make_project(owner=user)
    with pytest.raises(NotFound):
        selectors.project_get(user=other_user, slug=project.slug)
    assert list(selectors.project_list(user=other_user)) == []


def test_personal_project_is_created_once(user):
    first = services.personal_project_get_or_create(user=user)
    assert first.is_personal and services.personal_project_get_or_create(user=user) == first
