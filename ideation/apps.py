from django.apps import AppConfig


class IdeationConfig(AppConfig):
    name = "ideation"
    default_auto_field = "django.db.models.BigAutoField"
