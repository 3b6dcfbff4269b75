from django.db import migrations

DEFAULT_IMAGE = "localhost/mlp-python:bookworm"


def add_default_image(apps, schema_editor):
    JobImage = apps.get_model("jobs", "JobImage")
    JobImage.objects.get_or_create(
        name=DEFAULT_IMAGE,
        defaults={"description": "Debian bookworm: Python 3.11, numpy, pandas, scikit-learn (make image)"},
    )


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]
    operations = [migrations.RunPython(add_default_image, migrations.RunPython.noop)]
