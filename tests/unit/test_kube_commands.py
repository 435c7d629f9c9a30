"""Command lines the harness runs in the guest, run here in a shell where they can be."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from harness.k8s.commands import (
    containerd_socket_command,
    ctr_command,
    import_command,
    import_commands,
    kubelet_healthz_command,
    mount_share_command,
)
from harness.k8s.kubesolo import LOCAL_PATH_HELPER_IMAGE
from harness.k8s.preload import image_archives, image_tags, missing_images, normalize_image_ref


class TestGuestCommands:
    def test_ctr_talks_to_kubesolos_namespace(self) -> None:
        assert ctr_command("/s.sock", "images", "ls") == "ctr -a /s.sock -n k8s.io images ls"

    def test_image_archives(self, tmp_path: Path) -> None:
        for name in ("nginx.tar", "busybox.tar.gz", "x.tgz", "notes.txt", "a.oci"):
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "dir.tar").mkdir()
        assert image_archives(tmp_path) == ["busybox.tar.gz", "nginx.tar", "x.tgz"]

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

    @pytest.mark.parametrize(
        ("ref", "normal"),
        [
            ("nginx:stable", "docker.io/library/nginx:stable"),
            ("busybox", "docker.io/library/busybox:latest"),
            ("docker.io/library/busybox:stable", "docker.io/library/busybox:stable"),
            (
                "rancher/local-path-provisioner:v0.0.34",
                "docker.io/rancher/local-path-provisioner:v0.0.34",
            ),
            ("ghcr.io/a/b", "ghcr.io/a/b:latest"),
            ("localhost:5000/x:1", "localhost:5000/x:1"),
            ("localhost/x", "localhost/x:latest"),
            ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
        ],
    )
    def test_normalize_image_ref(self, ref: str, normal: str) -> None:
        assert normalize_image_ref(ref) == normal

    def test_helper_alias_only_when_needed_and_possible(self) -> None:
        stable = "docker.io/library/busybox:stable"
        assert image_tags([stable], [], "busybox:stable") == {LOCAL_PATH_HELPER_IMAGE: stable}
        assert image_tags([stable, LOCAL_PATH_HELPER_IMAGE], [], "busybox:stable") == {}
        assert image_tags([], [], "busybox:stable") == {}

    def test_oci_short_names_get_the_name_the_kubelet_asks_for(self) -> None:
        """ctr keeps an OCI archive's `nginx:stable` as is; the kubelet looks up the
        normalized name."""
        present = ["nginx:stable", "busybox:stable", "docker.io/coredns/coredns:1.14.1"]
        wanted = ["docker.io/library/nginx:stable", "docker.io/library/busybox:stable"]
        assert image_tags(present, wanted, wanted[1]) == {
            "docker.io/library/nginx:stable": "nginx:stable",
            "docker.io/library/busybox:stable": "busybox:stable",
            LOCAL_PATH_HELPER_IMAGE: "busybox:stable",
        }

    def test_missing_images_compare_normalized_names(self) -> None:
        wanted = ["nginx:stable", "docker.io/library/busybox:stable"]
        assert missing_images(["docker.io/library/nginx:stable"], wanted) == [wanted[1]]
        assert missing_images(["import-2026-01-01:stable"], wanted) == wanted
        assert missing_images(["nginx:stable", "busybox:stable"], wanted) == []
