from django.apps import AppConfig


class DataConfig(AppConfig):
    name = "data"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery's autodiscovery finds `data.tasks` only; dataset tasks live apart.
        from data import segments
        from data.datasets import tasks  # noqa: F401
        from data.datasets.services import segment_referenced

        # Retention never deletes a segment a dataset version still names.
        if segment_referenced not in segments.RETENTION_GUARDS:
            segments.RETENTION_GUARDS.append(segment_referenced)
