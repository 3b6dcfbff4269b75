"""The Celery app. Broker from REDIS_URL, else the in-process memory:// transport."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")

app = Celery("mlplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Short system tasks and long user jobs never share a queue: a burst of jobs must not
# delay reconcilers, policy checks or log flushes.
app.conf.task_queues = (Queue("default", routing_key="default"), Queue("jobs", routing_key="jobs"))
app.conf.task_default_queue = "default"
app.autodiscover_tasks()
