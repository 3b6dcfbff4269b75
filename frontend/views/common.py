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
