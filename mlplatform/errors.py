"""One error hierarchy for the whole platform. Services raise these; the REST API,
the MLflow-compatible API, pages and consumers map them to their own wire shapes."""


class ApplicationError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    code = "invalid"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "permission_denied"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class InvalidState(Conflict):
    code = "invalid_state"
