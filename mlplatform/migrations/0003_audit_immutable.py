"""The audit log is append-only in the database itself: UPDATE and DELETE on it fail,
whoever asks (the admin, a shell, a bug). Wiping the whole database (`flush`, TRUNCATE)
stays possible for whoever owns it: that is a DBA's act, not a row edit."""

from django.db import migrations

from mlplatform.migrations._audit_triggers import SQLITE_DOWN, SQLITE_UP

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION mlp_audit_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER mlp_audit_no_update BEFORE UPDATE OR DELETE ON mlplatform_auditevent
    FOR EACH ROW EXECUTE FUNCTION mlp_audit_immutable();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS mlp_audit_no_update ON mlplatform_auditevent;
DROP FUNCTION IF EXISTS mlp_audit_immutable();
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("mlplatform", "0002_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
