"""Who entered each secret value of a job. A job that is not a rerun got its values from
its submitter; a rerun's carried-over values have no known owner, so a rerun of it that
changes the code keeps them only if they are typed in again."""

from django.db import migrations, models


def owners_of_submitted_jobs(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    jobs = Job.objects.exclude(secret_env={}).filter(rerun_of__isnull=True).only("pk", "secret_env", "created_by_id")
    for job in jobs.iterator():
        job.secret_owners = dict.fromkeys(job.secret_env, job.created_by_id)
        job.save(update_fields=["secret_owners"])


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_mlflow_image_encrypted_secrets")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="secret_owners",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(owners_of_submitted_jobs, migrations.RunPython.noop),
    ]
