"""A private Postgres cluster in the data directory, for zero-configuration runs.

Binaries come from the first of: ``initdb``/``pg_ctl`` on PATH, Debian's
``/usr/lib/postgresql/*/bin``, or the ``pgserver`` wheel (which ships a
complete Postgres, so a machine with only Python and pip still works).

Postgres refuses to run as root.  When we are root (containers, CI machines)
the cluster is owned and run by an unprivileged system user, created on first
use.  If that user cannot reach the data directory (say it is under /root,
mode 0700), the cluster lives in ``/var/lib/ensemble-pg/clusters/<hash of the
data directory>`` instead, and binaries it cannot reach (a pgserver wheel in a
virtualenv under /root) are copied once to ``/var/lib/ensemble-pg``.

The cluster listens on 127.0.0.1 only, on a free port chosen at start, with a
generated password (SCRAM) kept in the data directory; its Unix socket lives
in a 0700 directory inside the cluster.  A cluster left running by a killed
server is found through ``postmaster.pid`` and reused.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ensemble.errors import ConfigError, Unavailable

__all__ = ["EmbeddedPostgres", "find_postgres_bin"]

PG_USER = "ensemble-pg"
SYSTEM_ROOT = Path("/var/lib/ensemble-pg")


def find_postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl and postgres."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if debian:
        return debian[0].parent
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            "no Postgres binaries found: install Postgres, or `pip install pgserver`, "
            "or set ENSEMBLE_DATABASE_URL"
        ) from None
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    data_dir: Path

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.password_file = self.data_dir / "postgres-password"
        self.bin = find_postgres_bin()
        self._set_root(self.data_dir / "postgres")

    def _set_root(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "data"
        self.sockets = root / "run"
        self.logfile = root / "postgres.log"

    # -- running as someone Postgres accepts --------------------------------

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _ensure_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(PG_USER)
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise Unavailable(f"cannot create system user {PG_USER} for embedded Postgres: {result.stderr.strip()}")
        return pwd.getpwnam(PG_USER)

    @staticmethod
    def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
        """Can ``user`` walk down to ``path`` (every existing ancestor searchable)?"""
        for parent in reversed(path.parents):
            if not parent.exists():
                break
            st = parent.stat()
            if st.st_uid != user.pw_uid and not st.st_mode & 0o001:
                return False
        return True

    @staticmethod
    def _copy_install(install: Path) -> Path:
        """Copy a Postgres install (pginstall/ with bin, lib, share) where anyone may run it.

        The pgserver wheel's binaries find their vendored libraries through
        RPATH ``$ORIGIN/../../../pgserver.libs``; the copy keeps that layout
        (``<target>/pkg/pginstall/bin`` next to ``<target>/pgserver.libs``).
        """
        digest = hashlib.sha256(str(install).encode()).hexdigest()[:16]
        target = SYSTEM_ROOT / f"pginstall-{digest}"
        bin_dir = target / "pkg" / install.name / "bin"
        if not (bin_dir / "pg_ctl").exists():
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(install, tmp / "pkg" / install.name, symlinks=True)
            vendored = install.parent.parent / "pgserver.libs"
            if vendored.is_dir():
                shutil.copytree(vendored, tmp / "pgserver.libs", symlinks=True)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        for path in [target, *target.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o755)
        return bin_dir

    def _relocate_for(self, user: pwd.struct_passwd) -> None:
        if not self._reachable(self.root, user):
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            self._set_root(SYSTEM_ROOT / "clusters" / digest)
        if not self._reachable(self.bin, user):
            self.bin = self._copy_install(self.bin.parent)
        for path in (SYSTEM_ROOT, SYSTEM_ROOT / "clusters"):
            if path.exists():
                os.chmod(path, 0o755)
        if not self._reachable(self.root, user) or not self._reachable(self.bin, user):
            raise ConfigError(
                f"embedded Postgres runs as user {PG_USER}, who cannot enter {self.root.parent}; "
                "set ENSEMBLE_DATA_DIR to a directory outside it, or ENSEMBLE_DATABASE_URL"
            )

    def _run(self, args: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._as_root:
            user = self._ensure_user()
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            args, capture_output=True, text=True, env=env, cwd=str(self.root), timeout=timeout, **kwargs  # type: ignore[call-overload]
        )
        if check and result.returncode != 0:
            raise Unavailable(
                f"embedded Postgres: {Path(args[0]).name} failed: {(result.stderr or result.stdout).strip()[-800:]}"
            )
        return result

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            SYSTEM_ROOT.mkdir(parents=True, exist_ok=True)
            (SYSTEM_ROOT / "clusters").mkdir(exist_ok=True)
            self._relocate_for(self._ensure_user())
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sockets.mkdir(mode=0o700, exist_ok=True)
        if self._as_root:
            user = self._ensure_user()
            for path in [self.root, *self.root.rglob("*")]:
                os.lchown(path, user.pw_uid, user.pw_gid)

    # -- lifecycle -------------------------------------------------------------

    def _password(self) -> str:
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        return password

    def _initdb(self, password: str) -> None:
        pwfile = self.root / ".pwfile"
        pwfile.write_text(password)
        try:
            if self._as_root:
                user = self._ensure_user()
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            os.chmod(pwfile, 0o600)
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D", str(self.pgdata),
                    "-U", "postgres",
                    "--pwfile", str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E", "UTF8",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _running_port(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        status = self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "status"], check=False)
        if status.returncode != 0:
            return None
        lines = pid_file.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def start(self) -> str:
        """Start (or reuse) the cluster; returns its DSN."""
        self._prepare_dirs()
        password = self._password()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(password)
        port = self._running_port()
        if port is None:
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} "
                f"-c unix_socket_directories={self.sockets} -c unix_socket_permissions=0700 "
                "-c max_connections=200 -c shared_buffers=128MB -c synchronous_commit=on"
            )
            self._run(
                [
                    str(self.bin / "pg_ctl"),
                    "-D", str(self.pgdata),
                    "-l", str(self.logfile),
                    "-w", "-t", "60",
                    "-o", options,
                    "start",
                ]
            )
        return f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], check=False)
