"""Garbage collection of uploaded files: mark every file a version's manifest names,
sweep the rest once they are older than the grace period (an upload stores its file
just before its version commits). Archive segments are the streams' retention's to
delete, never this collector's. Dry-run first: `files_sweep(dry_run=True)` reports."""

from dataclasses import dataclass, field
import datetime as dt

from django.db import transaction
from django.utils import timezone

from data.datasets import storage
from data.models import DataFile, DatasetVersion
from mlplatform.audit import audit_record

GRACE = dt.timedelta(hours=1)


@dataclass
class SweepReport:
    dry_run: bool
    referenced: int = 0
    unreferenced: list[str] = field(default_factory=list)
    bytes: int = 0

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "referenced": self.referenced, "files": self.unreferenced, "bytes": self.bytes}


def referenced_files() -> set[str]:
    marked: set[str] = set()
    for manifest in DatasetVersion.objects.values_list("manifest", flat=True).iterator():
        marked.update(p["sha256"] for p in manifest["parts"] if p["kind"] == "file")
    return marked


def files_sweep(*, dry_run: bool = True, now: dt.datetime | None = None) -> SweepReport:
    """Deletes (or, dry, lists) uploaded files no version names, older than GRACE."""
    marked = referenced_files()
    cutoff = (now or timezone.now()) - GRACE
    report = SweepReport(dry_run=dry_run, referenced=len(marked))
    for stored in DataFile.objects.filter(created_at__lt=cutoff).exclude(sha256__in=marked).order_by("pk"):
        report.unreferenced.append(stored.sha256)
        report.bytes += stored.bytes
        if not dry_run:
            _delete(stored)
    return report


@transaction.atomic
def _delete(stored: DataFile) -> None:
    # Re-checked under the row lock: a version made since the mark keeps its file.
    locked = DataFile.objects.select_for_update().filter(pk=stored.pk).first()
    if locked is None or stored.sha256 in referenced_files():
        return
    audit_record(
        actor=None, action="data_file.sweep", target=locked, before={"sha256": locked.sha256, "bytes": locked.bytes}
    )
    path = storage.file_path(locked.path)
    locked.delete()
    transaction.on_commit(lambda: path.unlink(missing_ok=True))
