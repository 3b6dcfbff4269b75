"""SQLite trigger statements, shared by migration 0003 and the flush command."""

SQLITE_UP = [
    "CREATE TRIGGER mlp_audit_no_update BEFORE UPDATE ON mlplatform_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are immutable'); END;",
    "CREATE TRIGGER mlp_audit_no_delete BEFORE DELETE ON mlplatform_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are immutable'); END;",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS mlp_audit_no_update;", "DROP TRIGGER IF EXISTS mlp_audit_no_delete;"]
