"""Periodic upkeep of the experiments app (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

import logging

from celery import shared_task

from experiments import multipart

logger = logging.getLogger(__name__)


@shared_task(name="experiments.abandoned_uploads_sweep_task")
def abandoned_uploads_sweep_task() -> int:
    deleted = multipart.abandoned_uploads_sweep()
    if deleted:
        logger.info("deleted %d abandoned multipart upload(s)", deleted)
    return deleted
