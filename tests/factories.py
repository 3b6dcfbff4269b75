import factory

from mlplatform.models import User
from mlplatform.roles import Role
from projects import services as project_services


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-123456")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


def make_project(*, owner=None, slug=None, name=None, members: dict | None = None):
    """A project created through the service (so audit and membership are real);
    `members` maps users to roles."""
    owner = owner or UserFactory()
    n = make_project.counter = getattr(make_project, "counter", 0) + 1
    project = project_services.project_create(owner=owner, name=name or f"Project {n}", slug=slug or f"project-{n}")
    for user, role in (members or {}).items():
        project_services.membership_add(project=project, username=user.username, role=role, actor=owner)
    return project


ROLES = Role
