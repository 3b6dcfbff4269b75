from django.core.management.base import BaseCommand, CommandError

from mlplatform import services
from mlplatform.errors import ApplicationError
from mlplatform.models import User
from projects.selectors import project_get


class Command(BaseCommand):
    help = "Create a personal API token; prints the token alone on its last line."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--project", help="Slug of the one project the token may reach.")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--days", type=int, default=90, help="Lifetime in days (default 90).")

    def handle(self, *args, user, project, name, days, **options):
        owner = User.objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"There is no user named '{user}'.")
        try:
            scope = project_get(user=owner, slug=project) if project else None
            token, raw = services.api_token_create(user=owner, name=name, project=scope, expires_in_days=days)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Token '{token.name}' for {owner.username}, expires {token.expires_at:%Y-%m-%d}. Shown once:"
        )
        self.stdout.write(raw)
