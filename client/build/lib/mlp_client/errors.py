"""Every failure the client reports, each with the exit code the `mlp` command ends with.

0 ok, 1 failed, 2 usage, 3 refused/forbidden, 4 not found, 5 timed out."""


class MlpError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, request_id: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (request id {self.request_id})" if self.request_id else self.message


class Failed(MlpError):
    """The server, the network or the job failed."""


class UsageError(MlpError):
    exit_code = 2


class Refused(MlpError):
    """Authentication refused, not allowed, or refused by a rule (a gate not passed)."""

    exit_code = 3


class NotFound(MlpError):
    exit_code = 4


class TimedOut(MlpError):
    exit_code = 5
