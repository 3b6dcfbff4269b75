"""Periodic work of the data app (the beat sends these; each is idempotent)."""

from celery import shared_task


@shared_task(name="data.segments_compact_task", ignore_result=True, soft_time_limit=300)
def segments_compact_task() -> None:
    """Indexes segments sealed without a row (after a crash) and compacts sealed ones to Parquet."""
    from data.segments import segments_compact_pending

    segments_compact_pending()


@shared_task(name="data.demo_feed_task", ignore_result=True, soft_time_limit=20)
def demo_feed_task() -> None:
    """Embedded mode only (`make run`): a batch of demo sensor readings over HTTP."""
    from django.conf import settings

    from data import demo

    if settings.DEMO_TRAFFIC_URL:
        demo.feed(base_url=settings.DEMO_TRAFFIC_URL)


@shared_task(name="data.streams_score_task", ignore_result=True, soft_time_limit=60)
def streams_score_task() -> None:
    """Live scoring: the next micro-batch of every stream that names an endpoint."""
    from django.conf import settings

    from data.scoring import streams_score

    streams_score(base_url=settings.MLP_PUBLIC_URL)
