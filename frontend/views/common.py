"""Helpers every page view uses: map application errors to forms and 404s."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import Http404

from mlplatform.errors import ApplicationError, NotFound
from projects.selectors import project_get, project_list


def call_service(form: forms.Form, fn: Callable[..., Any], **kwargs) -> Any | None:
    """Run a service; on an ApplicationError put its message on the form and return
    None, so the page shows the error next to what the user typed."""
    try:
        return fn(**kwargs)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return None


def offer_projects(form: forms.Form, user) -> None:
    """A create form's project choice: the projects the user can see (the service
    checks the role on the one chosen, see chosen_project)."""
    form.fields["project"].choices = [(p.slug, p.name) for p in project_list(user=user)]


def chosen_project(form: forms.Form, data: dict, user, min_role: str):
    """Pops the chosen project's slug from the cleaned data and returns the project if
    the user holds `min_role` there; else puts the reason on the form and returns None."""
    try:
        return project_get(user=user, slug=data.pop("project"), min_role=min_role)
    except ApplicationError as exc:
        form.add_error("project", exc.message)
        return None


def get_or_404(fn: Callable[..., Any], **kwargs) -> Any:
    try:
        return fn(**kwargs)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def all_errors(form: forms.Form) -> str:
    """Every error of a submitted form in one line, each with its field's label, for
    pages that answer a form with a message: the user fixes all of them at once."""
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.replace("_", " ").capitalize()) if field is not None else ""
        parts.extend(f"{label}: {e}" if label else str(e) for e in errors)
    return "; ".join(parts)
