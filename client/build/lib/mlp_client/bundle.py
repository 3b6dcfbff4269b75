"""Bundles a directory into a zip for a job, leaving out what the directory's
`.gitignore` and `.mlpignore` (same syntax) name, and always `.git/`."""

from collections.abc import Callable
import io
import os
from pathlib import Path
import re
import zipfile

ALWAYS_IGNORED = [".git/", "__pycache__/", "*.pyc"]


def _translate(pattern: str) -> str:
    """A gitignore glob as a regex over a path relative to the bundle root."""
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out, i = out + "/.*", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return ("^" if anchored else "^(?:.*/)?") + out + "$"


class IgnoreRules:
    def __init__(self, lines: list[str]) -> None:
        self.rules: list[tuple[re.Pattern, bool, bool]] = []  # (regex, negated, directories only)
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            line = line[1:] if negated else line
            self.rules.append((re.compile(_translate(line)), negated, line.endswith("/")))

    @classmethod
    def for_directory(cls, root: Path) -> "IgnoreRules":
        lines = list(ALWAYS_IGNORED)
        for name in (".gitignore", ".mlpignore"):
            if (root / name).is_file():
                lines += (root / name).read_text(encoding="utf-8", errors="replace").splitlines()
        return cls(lines)

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        result = False
        for regex, negated, dirs_only in self.rules:
            if dirs_only and not is_dir:
                continue
            if regex.match(relpath):
                result = not negated
        return result


def bundle_files(root: Path) -> list[Path]:
    rules = IgnoreRules.for_directory(root)
    files = []
    for current, dirs, names in os.walk(root):
        rel_dir = Path(current).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirs[:] = sorted(d for d in dirs if not rules.ignored(prefix + d, True))
        files += [Path(current) / n for n in sorted(names) if not rules.ignored(prefix + n, False)]
    return files


def make_bundle(root: Path, *, on_file: Callable[[int], None] | None = None) -> bytes:
    """The zip's bytes; `on_file(size)` after each file (for a progress bar)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in bundle_files(root):
            archive.write(path, path.relative_to(root).as_posix())
            if on_file:
                on_file(path.stat().st_size)
    return buffer.getvalue()


class ProgressReader(io.BytesIO):
    """Bytes that report how much of them was read: httpx reads a multipart file in
    chunks, so this drives an upload progress bar."""

    def __init__(self, data: bytes, on_read: Callable[[int], None]) -> None:
        super().__init__(data)
        self._on_read = on_read

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self._on_read(len(chunk))
        return chunk
