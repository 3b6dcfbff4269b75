from django.apps import AppConfig
from django.conf import settings


class FrontendConfig(AppConfig):
    name = "frontend"

    def ready(self) -> None:
        from frontend import assets

        assets.prepare_or_fall_back(settings.DATA_DIR)
