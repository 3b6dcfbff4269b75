from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "mlplatform"
    verbose_name = "Platform core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mlplatform.api import schema  # noqa: F401  (registers OpenAPI auth extensions)
