import logging

from celery import shared_task

from deployments import policies
from deployments.models import Endpoint

logger = logging.getLogger(__name__)


@shared_task(name="deployments.endpoints_policy_check_task", ignore_result=True, soft_time_limit=60)
def endpoints_policy_check_task() -> None:
    """Periodic (every 10 s): apply every endpoint's rollout policies. Idempotent: each
    check re-reads the endpoint, and every action is a compare-and-set in a service."""
    for endpoint in Endpoint.objects.select_related("champion", "challenger", "project"):
        try:
            policies.endpoint_policy_check(endpoint=endpoint)
        except Exception:  # one broken endpoint must not stop the others' policies
            logger.exception("policy check of endpoint %s failed", endpoint.slug)


@shared_task(name="deployments.demo_traffic_task", ignore_result=True, soft_time_limit=30)
def demo_traffic_task() -> None:
    """Embedded mode only (`make run`): a few demo requests so the dashboard moves."""
    from django.conf import settings

    from deployments import demo

    if settings.DEMO_TRAFFIC_URL:
        demo.traffic_burst(base_url=settings.DEMO_TRAFFIC_URL)
