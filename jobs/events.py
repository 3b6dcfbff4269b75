"""Group names and payloads of the jobs' live events."""

from mlplatform import events


def job_group(job_id: int) -> str:
    return events.group_name("job", job_id)


def project_group(project_id: int) -> str:
    return events.group_name("project-jobs", project_id)


def status_payload(job) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "reason": job.reason,
        "message": job.message,
        "exit_code": job.exit_code,
        "progress": job.progress,
        "finished": job.is_terminal,
        "run_id": job.run_id,
    }


def publish_status(job) -> None:
    payload = status_payload(job)
    events.publish(job_group(job.pk), "job.status", payload)
    events.publish(project_group(job.project_id), "job.status", payload)
