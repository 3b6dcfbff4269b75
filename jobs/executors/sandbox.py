"""The local executor's confinement, with Debian's bubblewrap (`bwrap`).

A job's code is whatever its submitter wrote, and the worker that runs it holds the
platform: the database (a SQLite file under MLP_DATA_DIR, or a URL in the environment),
the secret key, the artifact store, the archive and every other job's work dir. So a
local job runs in its own mount namespace built from nothing: the system's /usr (and its
lib symlinks), a short list of /etc files, the platform's interpreter and venv (all
read-only), a private /tmp, /dev and /proc (in its own pid namespace, so no other
process's /proc/<pid>/environ is there), its work dir read-write, and, when it has no
network, the tracking relay's directory (the same relay and forwarder container jobs
use, see relay.py). Nothing else of the host exists inside, so neither an absolute nor
a relative path leads to the platform's files.

The job runs as a dedicated unprivileged uid (MLP_JOB_SANDBOX_UID). As root, bwrap
builds the namespaces without a user namespace and `setpriv` drops to that uid with no
capabilities and no_new_privs before the job's first instruction; otherwise bwrap maps
that uid in a user namespace of the platform's own user. Its environment is the job's
own (see runner.job_env), nothing of the worker's.

Where no sandbox can be made (MLP_JOB_SANDBOX=off, no bwrap, a kernel that refuses the
namespaces), local jobs of non-admins are refused at submit and, should one still reach
a worker, fail there without running; an admin's job runs unconfined, with a warning
at the top of its log."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

from django.conf import settings

from jobs.executors.base import ExecutionContext
from jobs.executors.relay import FORWARD_PORT, MOUNT, TrackingRelay, forwarded_command

MB = 1024 * 1024
# The system part of the root, read-only. Merged-/usr systems have the lib and bin
# directories as symlinks into /usr; they are recreated as such.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs read from /etc: the loader's cache, TLS roots, alternatives (Debian's
# BLAS/LAPACK links), name resolution for network jobs, time zone. Not the rest of /etc.
ETC_ENTRIES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/mime.types",
    "/etc/os-release",
)
GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
SETPRIV_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")  # setpriv's own, dropped by it


def is_root() -> bool:
    return os.geteuid() == 0


def job_uid() -> int:
    return int(getattr(settings, "MLP_JOB_SANDBOX_UID", 65532))


def sandbox_mode() -> str:
    return str(getattr(settings, "MLP_JOB_SANDBOX", "auto")).strip().lower()


@dataclass
class Layout:
    """Where the sandbox's pieces come from on the host."""

    workdir: Path
    etc_dir: Path  # holds the sandbox's own passwd and group
    relay_dir: Path | None = None  # mounted at relay.MOUNT when the job has no network


def available() -> tuple[bool, str]:
    """(True, "") when local jobs can be confined here, else (False, why not)."""
    mode = sandbox_mode()
    if mode in ("off", "0", "false", "no"):
        return False, "the sandbox is turned off (MLP_JOB_SANDBOX=off)"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed"
    root = is_root()
    if root and shutil.which("setpriv") is None:
        return False, "setpriv (util-linux) is not installed"
    return _probe(bwrap, root, job_uid())


_working: set[tuple[str, bool, int]] = set()


def _probe(bwrap: str, root: bool, uid: int) -> tuple[bool, str]:
    """Builds a sandbox like a job's and runs the interpreter in it: a kernel or a
    container that refuses the namespaces shows here, not in a job. A success is
    remembered for the process; a failure is tried again next time."""
    if (bwrap, root, uid) in _working:
        return True, ""
    with tempfile.TemporaryDirectory(prefix="mlp-sandbox-probe-") as scratch:
        workdir = Path(scratch) / "work"
        workdir.mkdir()
        ctx = ExecutionContext(
            workdir=workdir,
            command=[sys.executable, "-c", "pass"],
            env={},
            memory_mb=256,
            cpus=1,
            gpus=0,
            timeout_seconds=30,
            network=False,
        )
        give_workdir(workdir)
        with _etc_dir(uid) as etc_dir:
            argv = command(ctx, Layout(workdir=workdir, etc_dir=etc_dir), bwrap=bwrap, root=root, uid=uid)
            try:
                result = subprocess.run(argv, env={}, capture_output=True, text=True, timeout=30, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                return False, f"bwrap could not start ({exc})"
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        return False, f"bwrap cannot build a sandbox here ({detail[-1] if detail else f'exit {result.returncode}'})"
    _working.add((bwrap, root, uid))
    return True, ""


def refusal(user) -> str:
    """Why `user` may not run a local job here ("" when they may): without a sandbox
    only admins may, and their jobs run unconfined."""
    ok, why = available()
    if ok or getattr(user, "is_admin", False):
        return ""
    return refusal_message(why)


def refusal_message(why: str) -> str:
    return (
        f"Local jobs run confined, and no sandbox can be made on this platform: {why}. "
        "Ask an admin to install bubblewrap (apt-get install bubblewrap), or use the docker executor."
    )


def give_workdir(workdir: Path) -> None:
    """As root the job runs as the sandbox uid, which must own its work dir (and
    nothing else on the host). Otherwise the work dir is already the job's."""
    if not is_root():
        return
    uid = job_uid()
    for root, dirs, files in os.walk(workdir):
        os.chown(root, uid, uid)
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


@contextmanager
def prepared(ctx: ExecutionContext) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The argv and environment of a confined job, and, for a job without network, the
    tracking relay serving while it runs."""
    give_workdir(ctx.workdir)
    with _etc_dir(job_uid()) as etc_dir:
        if ctx.network:
            yield command(ctx, Layout(ctx.workdir, etc_dir)), dict(ctx.env)
            return
        with TrackingRelay(settings.MLP_PUBLIC_URL) as relay:
            env = dict(ctx.env)
            if "MLFLOW_TRACKING_URI" in env:  # the forwarder's loopback port, as in a container
                env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{FORWARD_PORT}"
            yield command(ctx, Layout(ctx.workdir, etc_dir, relay.directory)), env


@contextmanager
def _etc_dir(uid: int) -> Iterator[Path]:
    """passwd and group naming the job's uid: getpass.getuser() and friends need one."""
    with tempfile.TemporaryDirectory(prefix="mlp-sandbox-") as directory:
        path = Path(directory)
        (path / "passwd").write_text(f"root:x:0:0::/nonexistent:/usr/sbin/nologin\njob:x:{uid}:{uid}::/tmp:/bin/sh\n")
        (path / "group").write_text(f"root:x:0:\njob:x:{uid}:\n")
        for name in ("passwd", "group"):
            os.chmod(path / name, 0o644)
        yield path


def command(
    ctx: ExecutionContext, layout: Layout, *, bwrap: str = "", root: bool | None = None, uid: int | None = None
) -> list[str]:
    """The bwrap command line that runs ctx.command confined."""
    root = is_root() if root is None else root
    uid = job_uid() if uid is None else uid
    mounts = _Mounts()
    mounts.system()
    mounts.special(tmp_bytes=max(256, ctx.memory_mb) * MB, gpus=ctx.gpus)
    mounts.interpreter()
    mounts.add("--ro-bind", layout.etc_dir / "passwd", Path("/etc/passwd"))
    mounts.add("--ro-bind", layout.etc_dir / "group", Path("/etc/group"))
    mounts.add("--bind", Path(os.path.realpath(ctx.workdir)), ctx.workdir)
    job_command = list(ctx.command)
    if layout.relay_dir is not None:
        mounts.add("--ro-bind", layout.relay_dir, Path(MOUNT))
        job_command = forwarded_command(job_command, sys.executable)
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not ctx.network:
        namespaces.append("--unshare-net")
    if root:
        identity = [arg for cap in SETPRIV_CAPS for arg in ("--cap-add", cap)]
        drop = [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        identity = ["--unshare-user", "--disable-userns", "--uid", str(uid), "--gid", str(uid)]
        drop = []
    return [
        bwrap or shutil.which("bwrap") or "bwrap",
        "--die-with-parent",
        *namespaces,
        "--hostname",
        f"job-{ctx.job_id}",
        *mounts.args,
        "--chdir",
        str(ctx.workdir),
        *identity,
        "--",
        *drop,
        *job_command,
    ]


class _Mounts:
    """bwrap mount arguments; every parent of a mount point is made explicitly, as
    bwrap would otherwise make it 0700 and root's: closed to the job's uid."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.made: set[str] = {"/"}

    def add(self, kind: str, source: Path | None, dest: Path, *options: str) -> None:
        self._parents(dest)
        self.args += [*options, kind, *([str(source)] if source is not None else []), str(dest)]
        self.made.add(str(dest))

    def _parents(self, dest: Path) -> None:
        for parent in reversed(dest.parents):
            text = str(parent)
            if text in self.made:
                continue
            self.args += ["--dir", text]
            self.made.add(text)

    def system(self) -> None:
        for name in SYSTEM_DIRS:
            path = Path(name)
            if path.is_symlink():
                self.args += ["--symlink", os.readlink(path), name]
                self.made.add(name)
            elif path.is_dir():
                self.add("--ro-bind", path, path)
        for name in ETC_ENTRIES:
            if os.path.lexists(name):
                self.add("--ro-bind-try", Path(name), Path(name))

    def special(self, *, tmp_bytes: int, gpus: int) -> None:
        self.add("--proc", None, Path("/proc"))
        self.add("--dev", None, Path("/dev"))
        self.add("--tmpfs", None, Path("/dev/shm"), "--perms", "1777")  # noqa: S108 - the job's own
        self.add("--tmpfs", None, Path("/tmp"), "--perms", "1777", "--size", str(tmp_bytes))  # noqa: S108 - the job's own
        if gpus:
            for device in (*GPU_DEVICES, *sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*"))):
                self.args += ["--dev-bind-try", device, device]
            self.add("--ro-bind", Path("/sys"), Path("/sys"))

    def interpreter(self) -> None:
        """The platform's Python (its venv has the MLflow client), at the paths the job's
        PATH and the venv's scripts name, resolved or not."""
        for prefix in dict.fromkeys([sys.base_prefix, sys.prefix]):
            real = Path(os.path.realpath(prefix))
            for dest in dict.fromkeys([real, Path(prefix)]):
                if not str(dest).startswith("/usr/") and str(dest) not in self.made:
                    self.add("--ro-bind", real, dest)
