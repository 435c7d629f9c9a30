"""The test image is the release image plus the test layer and nothing else
(docs/architecture.md "Release image"), proven on the two built images: so
what the suites test on the test image is what a release ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build.builder import BuildRequest, build
from harness.build.layer_proof import ISO_DIFFERENCES, prove
from harness.build.rootfs import BUILD_DIR
from harness.build.test_layer import LAYER_DIR, MARKER


def test_the_test_image_is_the_release_image_plus_its_layer(kubesolo_image, pytestconfig):
    if kubesolo_image.manifest["flavour"] != "test":
        pytest.skip("compares the test image with the release image: a --flavour test run")
    binary = pytestconfig.getoption("kubesolo_bin")
    release = build(BuildRequest(flavour="release", kubesolo_bin=Path(binary) if binary else None,
                                 standin=binary is None))  # fmt: skip
    proof = prove(release, kubesolo_image)
    assert proof.problems == ()
    layer = BUILD_DIR / LAYER_DIR
    tree = {p.relative_to(layer).as_posix(): p for p in layer.rglob("*")}
    files = {rel for rel, p in tree.items() if p.is_file()}
    # its files and marker, and the directories the release lacks
    assert files | {MARKER} <= set(proof.layer) <= set(tree) | {MARKER}
    assert set(proof.iso_differences) == set(ISO_DIFFERENCES)
    assert proof.release_files > 500
