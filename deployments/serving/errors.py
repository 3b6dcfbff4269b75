"""Errors in MLflow's scoring-server wire shape: `{"error_code", "message"}`."""

import json


class ServingError(Exception):
    status = 400
    error_code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"error_code": self.error_code, "message": self.message}).encode()


class InvalidInput(ServingError):
    """The request is not something the model can score (MLflow answers these 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Invalid input. {message}")


class SchemaMismatch(ServingError):
    """Columns or types disagree with the model signature."""


class PayloadTooLarge(ServingError):
    status = 413
    error_code = "RESOURCE_EXHAUSTED"


class UnsupportedMediaType(ServingError):
    status = 415
    error_code = "BAD_REQUEST"


class Unauthorized(ServingError):
    status = 401
    error_code = "UNAUTHENTICATED"


class EndpointNotFound(ServingError):
    status = 404
    error_code = "ENDPOINT_NOT_FOUND"


class NotReady(ServingError):
    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


class ModelFailed(ServingError):
    status = 500
    error_code = "INTERNAL_ERROR"
