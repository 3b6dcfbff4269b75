from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Jobs: user code run by Celery in a local process or a container.

    DESIGN.md places jobs inside experiments/. They live in their own app because the
    experiments app was written in parallel on another branch: two apps keep the two
    migration histories independent. Jobs reach runs only through
    experiments.services (see jobs/tracking.py), so folding this app into experiments
    later is a move, not a rewrite."""

    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"
