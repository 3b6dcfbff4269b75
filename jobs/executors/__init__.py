"""Executors run a prepared job and report through a Sink: `local` (a process group
confined by bubblewrap, with rlimits; see sandbox.py) and `docker` (a hardened
container on any Docker-API engine)."""

from jobs.executors.base import ExecutionContext, Executor, InfrastructureError, Outcome, Sink  # noqa: F401


def get_executor(name: str) -> "Executor":
    if name == "docker":
        from jobs.executors.docker import DockerExecutor

        return DockerExecutor()
    from jobs.executors.local import LocalExecutor

    return LocalExecutor()
