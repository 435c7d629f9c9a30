"""Command lines the harness runs in the guest, run here in a shell where they can be."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from harness.k8s.commands import (
    containerd_socket_command,
    ctr_command,
    import_command,
    import_commands,
    kubelet_healthz_command,
    mount_share_command,
    unmount_shares_command,
)
from harness.k8s.kubesolo import KUBELET_HEALTHZ


class TestGuestCommands:
    def test_ctr_talks_to_kubesolos_namespace(self) -> None:
        assert ctr_command("/s.sock", "images", "ls") == "ctr -a /s.sock -n k8s.io images ls"

    def test_import_commands_read_from_the_share(self) -> None:
        assert import_commands("/s", ["a b.tar"]) == [
            "ctr -a /s -n k8s.io images import '/mnt/kimages/a b.tar'"
        ]

    @pytest.mark.parametrize("name", ["nginx.tar.gz", "nginx.tgz"])
    def test_gzipped_archives_are_decompressed_for_ctr(self, name: str) -> None:
        """ctr's importer reads a plain tar stream (no decompression in containerd 1.x)."""
        assert import_command("/s", name) == (
            f"gunzip -c /mnt/kimages/{name} | ctr -a /s -n k8s.io images import -"
        )

    def test_gunzip_pipe_feeds_ctr_a_plain_tar(self, tmp_path: Path) -> None:
        (tmp_path / "layout").mkdir()
        (tmp_path / "layout" / "manifest.json").write_text("[]")
        archive = tmp_path / "x.tar.gz"
        subprocess.run(
            ["tar", "-czf", str(archive), "-C", str(tmp_path / "layout"), "."], check=True
        )
        command = import_command("/s", "x.tar.gz").replace("/mnt/kimages", str(tmp_path))
        command = command.split(" | ")[0] + " | tar -t >/dev/null"
        subprocess.run(["sh", "-c", command], check=True)

    def test_share_mount_is_read_only_9p_and_idempotent(self) -> None:
        command = mount_share_command()
        assert "mount -t 9p -o trans=virtio,ro,version=9p2000.L kimages /mnt/kimages" in command
        assert "grep -qs ' /mnt/kimages ' /proc/mounts ||" in command

    def test_guest_commands_never_exit_the_test_shell(self) -> None:
        commands = [
            mount_share_command(),
            containerd_socket_command(),
            kubelet_healthz_command(),
            unmount_shares_command(),
        ]
        assert not any("exit" in c for c in commands)

    def test_socket_command_prints_the_first_existing_socket(self, tmp_path: Path) -> None:
        real = tmp_path / "b.sock"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(real))
            candidates = [str(tmp_path / "a.sock"), str(real), str(tmp_path / "c.sock")]
            command = containerd_socket_command(candidates)
            result = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert result.stdout == f"{real}\n"


# ---- the kubelet probe, run by the image's own busybox ----
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static, the binary the image carries


class Server:
    """127.0.0.1 HTTP server: `ok` at every path, or (silent) no answer at all."""

    def __init__(self, silent: bool = False) -> None:
        release = self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if silent:
                    release.wait(30)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def busybox_sh(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`busybox sh -c command` with only busybox applets on PATH, as in the image."""
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} not found: install busybox-static (scripts/setup.sh does)")
    applets = tmp_path / "bin"
    applets.mkdir()
    for applet in ("timeout", "wget"):
        (applets / applet).symlink_to(BUSYBOX)
    return subprocess.run(
        [str(BUSYBOX), "sh", "-c", command],
        capture_output=True,
        text=True,
        env={"PATH": str(applets)},
        timeout=60,
        check=False,
    )


def test_the_kubelet_probe_reads_healthz_with_the_images_busybox(tmp_path: Path) -> None:
    """The exact probe command, against a local server in place of the kubelet: busybox
    1.35's wget answers `ok` (with `-T` it would segfault, status 139)."""
    server = Server()
    try:
        result = busybox_sh(kubelet_healthz_command(server.url), tmp_path)
    finally:
        server.close()
    assert (result.returncode, result.stdout) == (0, "ok"), result.stderr


def test_the_kubelet_probe_gives_up_on_a_silent_kubelet(tmp_path: Path) -> None:
    """`timeout` ends a GET nobody answers: the probe never outlives its guest command."""
    server = Server(silent=True)
    try:
        result = busybox_sh(kubelet_healthz_command(server.url, seconds=1), tmp_path)
    finally:
        server.close()
    assert result.returncode not in (0, 139), result
    assert result.stdout == ""


def test_the_kubelet_probe_asks_the_kubelets_healthz_by_default() -> None:
    assert kubelet_healthz_command() == f"timeout 10 wget -qO- {KUBELET_HEALTHZ}"
