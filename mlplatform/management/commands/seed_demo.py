"""Demo data for `make run`: an admin, two colleagues and a demo project. Idempotent:
running it again changes nothing that exists. Each section's demo data lives in its
app's `demo.py` and is called from `handle()`."""

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from data import demo as data_demo
from deployments import demo as deployments_demo
from experiments import demo as tracking_demo
from ideation import demo as ideation_demo
from jobs import demo as jobs_demo
from mlplatform.models import User
from mlplatform.roles import Role
from projects import services as project_services
from projects.models import Project

DEMO_PASSWORD = os.environ.get("MLP_DEMO_PASSWORD", "demo-admin-pass")
COLLEAGUES = [("alice", Role.DATA_SCIENTIST), ("bob", Role.STAKEHOLDER)]


def demo_users() -> User:
    admin = User.objects.filter(username="admin").first()
    if admin is None:
        admin = User.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD, is_platform_admin=True)
    for username, _role in COLLEAGUES:
        if not User.objects.filter(username=username).exists():
            User.objects.create_user(username, f"{username}@example.com", DEMO_PASSWORD)
    return admin


def demo_project(admin: User) -> Project:
    project = Project.objects.filter(slug="demo").first()
    if project is None:
        project = project_services.project_create(
            owner=admin,
            name="Demo: predictive maintenance",
            slug="demo",
            description="Predict pump failures from sensor readings, so planners can schedule maintenance "
            "before a breakdown stops the line.",
        )
        for username, role in COLLEAGUES:
            project_services.membership_add(project=project, username=username, role=role, actor=admin)
    return project


class Command(BaseCommand):
    help = "Create the demo admin, users and project (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            admin = demo_users()
            project = demo_project(admin)
            ideation_demo.seed(admin, project)
        tracking_demo.seed(admin, project)
        jobs_demo.seed(admin, project)  # outside the transaction: the demo jobs really run
        deployments_demo.seed(admin, project)  # serves the registry's demo model
        data_demo.seed(admin, project)  # the pump sensor stream, fed over HTTP by the beat
        self.stdout.write(
            "Demo ready. Log in at http://127.0.0.1:8000/accounts/login/ as "
            f"admin / {DEMO_PASSWORD} (also alice and bob, same password)."
        )
