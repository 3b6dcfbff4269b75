"""Django's `flush`, able to empty the append-only audit table.

SQLite flushes with DELETE, which the audit trigger refuses; wiping the whole database
is an owner's act (tests do it between transactional tests), so the trigger is lifted
for the flush and restored in the same transaction."""

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections, transaction

from mlplatform.migrations import _audit_triggers


class Command(FlushCommand):
    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for statement in _audit_triggers.SQLITE_DOWN:
                cursor.execute(statement)
            super().handle(**options)
            for statement in _audit_triggers.SQLITE_UP:
                cursor.execute(statement)
