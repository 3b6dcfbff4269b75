"""The job image with the MLflow client replaces the one without (jobs track with the
real client now), and secret env values already stored get encrypted."""

from django.db import migrations

OLD_IMAGE = "localhost/mlp-python:bookworm"
NEW_IMAGE = "localhost/mlp-python:bookworm-mlflow"


def add_mlflow_image(apps, schema_editor):
    JobImage = apps.get_model("jobs", "JobImage")
    JobImage.objects.get_or_create(
        name=NEW_IMAGE,
        defaults={"description": "Debian bookworm: Python 3.11, numpy, pandas, scikit-learn, MLflow client (make image)"},
    )
    JobImage.objects.filter(name=OLD_IMAGE).update(is_active=False)


def encrypt_secrets(apps, schema_editor):
    from jobs import secrets

    Job = apps.get_model("jobs", "Job")
    for job in Job.objects.exclude(secret_env={}).only("pk", "secret_env").iterator():
        plain = {k: v for k, v in job.secret_env.items() if not v.startswith(secrets.PREFIX)}
        if plain:
            job.secret_env = {**job.secret_env, **secrets.encrypt_values(plain)}
            job.save(update_fields=["secret_env"])


def decrypt_secrets(apps, schema_editor):
    from jobs import secrets

    Job = apps.get_model("jobs", "Job")
    for job in Job.objects.exclude(secret_env={}).only("pk", "secret_env").iterator():
        job.secret_env = secrets.decrypt_values(job.secret_env)
        job.save(update_fields=["secret_env"])


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_default_image")]
    operations = [
        migrations.RunPython(add_mlflow_image, migrations.RunPython.noop),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
