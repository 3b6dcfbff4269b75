"""The README's *Automation* section shows `mlp --help` and every subcommand's help as
the real CLI prints them. `python -m tests.client.readme_help` rewrites that block;
test_readme.py fails when it is out of date."""

from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "client"))
START, END = "<!-- mlp-help:start (generated: python -m tests.client.readme_help) -->", "<!-- mlp-help:end -->"


def commands(group, prefix=()):
    yield prefix
    for name in sorted(group.commands):
        command = group.commands[name]
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def render() -> str:
    from click.testing import CliRunner

    from mlp_client.cli import cli

    parts = []
    for path in commands(cli):
        result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100, env={"COLUMNS": "100"}, prog_name="mlp")
        assert result.exit_code == 0, result.output
        title = " ".join(("mlp", *path, "--help"))
        parts.append(
            f"<details><summary><code>{title}</code></summary>\n\n```\n{result.stdout.rstrip()}\n```\n</details>"
        )
    return "\n".join(parts)


def block(readme: str) -> str:
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


if __name__ == "__main__":
    path = ROOT / "README.md"
    text = path.read_text()
    head, rest = text.split(START, 1)
    path.write_text(head + START + "\n" + render() + "\n" + END + rest.split(END, 1)[1])
