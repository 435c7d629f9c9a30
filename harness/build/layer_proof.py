"""The proof that the test image is the release image plus the test layer and
nothing else (docs/architecture.md "Release image"), read from two built
images: every file of the release initramfs is in the test initramfs with
the same bytes, mode and owner; the test initramfs holds beyond them exactly
the paths its layer marker lists; the kernels are the same bytes; the ISOs
differ only in ISO_DIFFERENCES. The suites test the test image; this is what
makes that a test of the release."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.artefact import Image
from harness.build import cpio
from harness.build.test_layer import MARKER, layer_paths
from harness.tools import run_tool

# Where the two ISOs may differ, and why: the initramfs carries the layer; the
# menus are the flavour's (the test menu has the shell label and no lock).
ISO_DIFFERENCES = {
    "boot/initramfs": "the test layer",
    "isolinux/isolinux.cfg": "the flavour's menu",
    "boot/grub/grub.cfg": "the flavour's menu",
}


@dataclass(frozen=True)
class LayerProof:
    release_files: int  # entries of the release initramfs, all found unchanged
    layer: tuple[str, ...]  # what the test image holds beyond them
    iso_differences: tuple[str, ...]  # ISO paths that differ (all documented when it holds)
    problems: tuple[str, ...]

    @property
    def holds(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.holds:
            return f"{len(self.problems)} problems: " + "; ".join(self.problems[:5])
        return (
            f"all {self.release_files} files of the release initramfs in the test initramfs "
            f"unchanged, plus its layer of {len(self.layer)} ({', '.join(self.layer)}); "
            f"the same kernel; the ISOs differ in {', '.join(self.iso_differences)} only"
        )


def initramfs_problems(release: bytes, test: bytes) -> tuple[int, list[str], list[str]]:
    """(release entries, the test's extra paths, problems) of two initramfs archives."""
    before = {e.path: e for e in cpio.parse(release)}
    after = {e.path: e for e in cpio.parse(test)}
    problems = []
    for path, entry in before.items():
        found = after.get(path)
        if found is None:
            problems.append(f"{path}: in the release initramfs, not in the test one")
            continue
        for what, mine, theirs in (
            ("bytes", entry.data, found.data),
            ("mode", entry.mode, found.mode),
            ("owner", entry.owner, found.owner),
            ("device", entry.rdev, found.rdev),
        ):
            if mine != theirs:
                problems.append(f"{path}: the test initramfs changes its {what}")
    extra = sorted(set(after) - set(before))
    marker = after.get(MARKER)
    listed = sorted(layer_paths(marker.data.decode())) if marker else []
    if marker is None:
        problems.append(f"the test initramfs has no layer marker ({MARKER})")
    else:
        if unlisted := sorted(set(extra) - set(listed)):
            problems.append(f"the test initramfs holds files its layer does not list: {unlisted}")
        if replaced := sorted(set(listed) - set(extra)):
            problems.append(f"the test layer lists release files as its own: {replaced}")
    return len(before), extra, problems


def iso_digests(iso: Path, scratch: Path) -> dict[str, str]:
    """sha256 of every file of an ISO (extracted by xorriso into `scratch`)."""
    run_tool(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(scratch)])
    return {
        p.relative_to(scratch).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(scratch.rglob("*"))
        if p.is_file()
    }


def prove(release: Image, test: Image) -> LayerProof:
    """The proof, on two built images (a release image with the stand-in, so
    that both have the same KubeSolo, and the test image)."""
    count, extra, problems = initramfs_problems(
        release.initramfs.read_bytes(), test.initramfs.read_bytes()
    )
    if release.kernel.read_bytes() != test.kernel.read_bytes():
        problems.append("the kernels differ")
    with tempfile.TemporaryDirectory() as tmp:
        a = iso_digests(release.iso, Path(tmp) / "release")
        b = iso_digests(test.iso, Path(tmp) / "test")
    differing = sorted(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))
    undocumented = [p for p in differing if p not in ISO_DIFFERENCES]
    if undocumented:
        problems.append(f"the ISOs differ where docs/architecture.md does not say: {undocumented}")
    return LayerProof(count, tuple(extra), tuple(differing), tuple(problems))
