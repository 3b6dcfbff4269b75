"""Celery tasks of dataset versions (registered through data.apps)."""

import logging

from celery import shared_task

from data.datasets import profile, reader, services
from data.models import DatasetVersion, ProfileStatus

logger = logging.getLogger(__name__)


@shared_task(name="data.dataset_version_profile_task", ignore_result=True, soft_time_limit=1800, time_limit=1900)
def dataset_version_profile_task(version_id: int) -> None:
    """Profiles a version once. Idempotent: a version already profiled is left alone;
    one whose parts are gone is marked broken."""
    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None or version.profile_status == ProfileStatus.READY:
        return
    try:
        result, schema = profile.profile_version(version)
    except reader.PartMissing as exc:
        services.version_mark_broken(version=version, reason=str(exc))
        services.version_profile_save(version_id=version_id, profile=None, schema=None, error=str(exc))
        return
    except Exception as exc:  # a profile that fails says why on the page; the version stays usable
        logger.exception("profiling dataset version %s failed", version_id)
        services.version_profile_save(
            version_id=version_id, profile=None, schema=None, error=f"{exc.__class__.__name__}: {exc}"
        )
        return
    services.version_profile_save(version_id=version_id, profile=result, schema=schema)


@shared_task(name="data.dataset_files_sweep_task", ignore_result=True, soft_time_limit=600)
def dataset_files_sweep_task(dry_run: bool = False) -> dict:
    """Periodic: removes uploaded files that no version names (see data.datasets.gc)."""
    from data.datasets import gc

    report = gc.files_sweep(dry_run=dry_run)
    if report.unreferenced:
        logger.info(
            "dataset files sweep (dry_run=%s): %d files, %d bytes", dry_run, len(report.unreferenced), report.bytes
        )
    return report.as_dict()
