"""No Docker daemon here: check that every compose service runs a real entry point."""

from importlib import import_module
from pathlib import Path
import shlex

from django.core.management import get_commands
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _command(service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else list(command)


def _check_entry_point(argv: list[str]) -> None:
    if argv[:2] == ["python", "manage.py"]:
        assert argv[2] in get_commands(), f"manage.py has no command {argv[2]}"
    elif argv[0] == "celery":
        assert argv[1] == "-A"
        app = import_module(argv[2]).celery_app
        assert argv[3] in {"worker", "beat"} and app.main == "mlplatform"
        if "-Q" in argv:
            queues = set(argv[argv.index("-Q") + 1].split(","))
            assert queues <= {q.name for q in app.conf.task_queues}
    elif argv[0] == "uvicorn":
        module, attr = argv[1].split(":")
        assert callable(getattr(import_module(module), attr))
    else:
        raise AssertionError(f"unknown entry point {argv}")


def test_every_compose_service_command_is_a_real_entry_point():
    compose = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    ours = [name for name, svc in services.items() if "build" in svc or svc.get("image", "").startswith("mlplatform")]
    assert {"web", "worker", "beat"} <= set(ours)
    for name in ours:
        argv = _command(services[name])
        assert argv, f"{name} has no command"
        _check_entry_point(argv)
    assert (ROOT / "compose" / "Dockerfile").exists() and (ROOT / "compose" / "env.example").exists()
