"""Image names as containerd stores them and as the kubelet asks for them."""

from __future__ import annotations

import pytest

from harness.k8s.image_refs import image_tags, missing_images, normalize_image_ref
from harness.k8s.kubesolo import LOCAL_PATH_HELPER_IMAGE


class TestImageNames:
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
