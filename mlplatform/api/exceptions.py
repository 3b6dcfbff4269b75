"""The one DRF exception handler: every error leaves the API as
`{"error": {"code": ..., "message": ..., "details": ...}}` with a fitting status."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from mlplatform.errors import ApplicationError


def error_response(code: str, message: str, http_status: int, details=None) -> Response:
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return Response(body, status=http_status)


def first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            text = first_message(value)
            return text if key == "non_field_errors" else f"{key}: {text}"
    if isinstance(detail, list) and detail:
        return first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return error_response(exc.code, exc.message, exc.status_code, exc.extra or None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return error_response("invalid", first_message(exc.detail), status.HTTP_400_BAD_REQUEST, exc.detail)
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = {"error": {"code": code, "message": first_message(exc.detail)}}
    return response
