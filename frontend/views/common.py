"""Helpers every page view uses: map application errors to forms and 404s."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import Http404

from mlplatform.errors import ApplicationError, NotFound


def call_service(form: forms.Form, fn: Callable[..., Any], **kwargs) -> Any | None:
    """Run a service; on an ApplicationError put its message on the form and return
    None, so the page shows the error next to what the user typed."""
    try:
        return fn(**kwargs)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
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
