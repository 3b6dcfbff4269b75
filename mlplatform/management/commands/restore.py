"""`python manage.py restore DIR`: a backup into the configured database, MLP_DATA_DIR
and data archive, which must be empty unless --force (see mlplatform/backup.py)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mlplatform import backup


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup` into the configured database, MLP_DATA_DIR and archive."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("directory", help="A directory written by `manage.py backup`.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace a database, data dir and archive that are not empty (destroys them).",
        )

    def handle(self, *args, directory, force, **options):
        try:
            backup.restore(source=Path(directory), force=force, say=self.stdout.write)
        except backup.BackupError as error:
            raise CommandError(str(error)) from error
