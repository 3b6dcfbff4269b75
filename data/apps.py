from django.apps import AppConfig


class DataConfig(AppConfig):
    name = "data"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery's autodiscovery finds `data.tasks` only; dataset tasks live apart.
        from data.datasets import tasks  # noqa: F401
