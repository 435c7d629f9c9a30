"""Where a dev VM's session lives: one directory per name, holding the server's
pid, its sockets, its settings and the VM's run directory. A directory whose
server is dead is stale and is removed by the next use of the name. The
sessions' root and each session are private to the user (harness.private):
what the server boots, and the pid --stop kills, come only from there."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.private import private_dir, runtime_root, user_scoped
from harness.process import pid_alive

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
SOCKET_PATH_MAX = 107


def sessions_root() -> Path:
    """$XDG_RUNTIME_DIR/kubesolo-dev, /run/kubesolo-dev for root, else
    kubesolo-dev-UID in the temporary directory (private_root checks it)."""
    return runtime_root() / user_scoped("kubesolo-dev")


def private_root() -> Path:
    """The sessions' root, made private, or refused in one line."""
    return private_dir(sessions_root())


@dataclass(frozen=True)
class Settings:
    """What the server boots: written by the command, read by the server."""

    name: str
    image: str  # an image directory
    label: str | None = None
    kernel_args: str = ""
    memory_mb: int = 512
    cpus: int = 1
    iso: bool = False
    data: str | None = None  # a qcow2 kept across sessions; None: a disposable overlay
    forwards: list[tuple[int, int]] = field(default_factory=list)  # (host port or 0, guest port)
    watch: bool = False
    build_dir: str | None = None  # the OS tree the watcher watches (None: the repository's)
    kubesolo_bin: str | None = None  # for the watcher's full rebuilds
    owner: int | None = None  # the foreground command's pid: the VM stops when it dies


@dataclass(frozen=True)
class Session:
    name: str

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise UserError(
                f"dev VM name {self.name!r}: 1 to 32 of a-z, 0-9, _ and -, starting with a letter "
                "or digit"
            )

    @property
    def dir(self) -> Path:
        return sessions_root() / self.name

    def check_socket_paths(self) -> None:
        """Unix socket paths are at most 107 bytes: say so before binding."""
        longest = max(len(str(p).encode()) for p in (self.console_sock, self.control_sock))
        if longest > SOCKET_PATH_MAX:
            raise UserError(
                f"dev VM {self.name}: its socket path {self.control_sock} is {longest} bytes, over "
                f"the {SOCKET_PATH_MAX} a Unix socket takes: set XDG_RUNTIME_DIR to a shorter "
                "directory, or use a shorter --name"
            )

    console_sock = property(lambda self: self.dir / "console.sock")
    control_sock = property(lambda self: self.dir / "control.sock")
    settings_file = property(lambda self: self.dir / "settings.json")
    ready_file = property(lambda self: self.dir / "ready.json")
    error_file = property(lambda self: self.dir / "error.txt")
    pid_file = property(lambda self: self.dir / "server.pid")
    log_file = property(lambda self: self.dir / "server.log")
    run_dir = property(lambda self: self.dir / "run")
    kubeconfig = property(lambda self: self.dir / "kubeconfig")

    def server_pid(self) -> int | None:
        """The live server's pid, or None; read only from a session directory
        of ours (--stop kills it)."""
        private_root()
        if not os.path.lexists(self.dir):
            return None
        private_dir(self.dir)
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def create(self, settings: Settings) -> None:
        """A fresh directory for a new server; a stale one is removed first."""
        if self.server_pid() is not None:
            raise UserError(
                f"dev VM {self.name} is running: attach with `kubesolo-harness dev --attach "
                f"{self.name}` or stop it with `--stop {self.name}`"
            )
        self.check_socket_paths()
        private_root()
        shutil.rmtree(self.dir, ignore_errors=True)
        private_dir(self.dir)
        self.settings_file.write_text(json.dumps(asdict(settings)))

    def settings(self) -> Settings:
        data = json.loads(self.settings_file.read_text())
        data["forwards"] = [tuple(pair) for pair in data["forwards"]]
        return Settings(**data)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def running_names() -> list[str]:
    root = private_root()
    names = sorted(p.name for p in root.iterdir())
    return [n for n in names if NAME.fullmatch(n) and Session(n).server_pid() is not None]
