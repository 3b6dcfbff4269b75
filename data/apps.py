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
        self._register_drift_references()

    @staticmethod
    def _register_drift_references() -> None:
        """Deployments read a dataset version's profile as a drift reference (the run's
        training input, or `reference: "dataset:<project>/<name>@<ref>"`)."""
        from data.datasets import references
        from deployments import links

        if references.training_reference not in links.TRAINING_REFERENCE_RESOLVERS:
            links.TRAINING_REFERENCE_RESOLVERS.append(references.training_reference)
        links.NAMED_REFERENCE_RESOLVERS[references.SCHEME] = references.named_reference
