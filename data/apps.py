from django.apps import AppConfig


class DataConfig(AppConfig):
    name = "data"
    default_auto_field = "django.db.models.BigAutoField"
