"""Side-loading images (docs/kubesolo.md "Images"): archives, names, the import itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kube_fakes import FakeMachine

from harness.k8s.commands import containerd_socket_command, mount_share_command
from harness.k8s.errors import PreloadError
from harness.k8s.kubesolo import CONTAINERD_SOCKETS, LOCAL_PATH_HELPER_IMAGE
from harness.k8s.node import KubeNode
from harness.k8s.preload import image_archives
from harness.k8s.settings import KubeSettings


class TestImageImport:
    def test_mount_find_socket_import_each_then_alias_busybox(self, tmp_path: Path) -> None:
        images = tmp_path / "images"
        images.mkdir()
        for name in ("nginx.tar", "busybox.tar"):
            (images / name).write_bytes(b"")
        listing = "docker.io/library/nginx:stable\ndocker.io/library/busybox:stable\n"
        machine = FakeMachine(tmp_path, images=listing)
        node_ = KubeNode(machine, KubeSettings(images_dir=images))
        node_.timer.begin("boot")
        assert node_.import_images() == ["busybox.tar", "nginx.tar"]
        sock = CONTAINERD_SOCKETS[0]
        assert machine.commands == [
            mount_share_command(),
            containerd_socket_command(),
            f"ctr -a {sock} -n k8s.io images import /mnt/kimages/busybox.tar",
            f"ctr -a {sock} -n k8s.io images import /mnt/kimages/nginx.tar",
            f"ctr -a {sock} -n k8s.io images ls -q",
            f"ctr -a {sock} -n k8s.io images tag docker.io/library/busybox:stable "
            f"{LOCAL_PATH_HELPER_IMAGE}",
        ]
        assert "images_imported" in json.loads(node_.timer.path.read_text())["runs"][0]["phases"]
        assert node_.present_images == {
            "docker.io/library/nginx:stable",
            "docker.io/library/busybox:stable",
            LOCAL_PATH_HELPER_IMAGE,
        }

    def test_images_the_suites_need_must_be_there_after_import(self, tmp_path: Path) -> None:
        (tmp_path / "nginx.tar").write_bytes(b"")
        machine = FakeMachine(tmp_path, images="import-2026-01-01:stable\n")
        node_ = KubeNode(machine, KubeSettings(images_dir=tmp_path))
        with pytest.raises(PreloadError, match=r"nginx:stable, .*busybox:stable not among"):
            node_.import_images()

    def test_oci_short_names_are_tagged_before_the_check(self, tmp_path: Path) -> None:
        (tmp_path / "images.tar").write_bytes(b"")
        machine = FakeMachine(tmp_path, images="nginx:stable\nbusybox:stable\n")
        node_ = KubeNode(machine, KubeSettings(images_dir=tmp_path))
        node_.timer.begin("boot")
        node_.import_images()
        tags = [c.split(" images tag ")[1] for c in machine.commands if " images tag " in c]
        assert tags == [
            "nginx:stable docker.io/library/nginx:stable",
            "busybox:stable docker.io/library/busybox:stable",
            f"busybox:stable {LOCAL_PATH_HELPER_IMAGE}",
        ]

    def test_no_images_dir_imports_nothing(self, tmp_path: Path) -> None:
        machine = FakeMachine(tmp_path)
        assert KubeNode(machine, KubeSettings()).import_images() == []
        assert machine.commands == []

    def test_empty_images_dir_is_a_clear_error(self, tmp_path: Path) -> None:
        node_ = KubeNode(FakeMachine(tmp_path), KubeSettings(images_dir=tmp_path))
        with pytest.raises(PreloadError, match="no image archives"):
            node_.import_images()


class TestArchives:
    def test_image_archives(self, tmp_path: Path) -> None:
        for name in ("nginx.tar", "busybox.tar.gz", "x.tgz", "notes.txt", "a.oci"):
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "dir.tar").mkdir()
        assert image_archives(tmp_path) == ["busybox.tar.gz", "nginx.tar", "x.tgz"]
