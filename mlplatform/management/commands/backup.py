"""`python manage.py backup DIR`: the database, MLP_DATA_DIR and the data archive into
a new directory (see mlplatform/backup.py)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mlplatform import backup


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump, or SQLite's online backup), MLP_DATA_DIR and the data archive "
        "into DIR, with a manifest."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="A new or empty directory.")

    def handle(self, *args, directory, **options):
        try:
            backup.backup(target=Path(directory), say=self.stdout.write)
        except backup.BackupError as error:
            raise CommandError(str(error)) from error
