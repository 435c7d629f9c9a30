"""OCI image archives written by harness.build.oci: a valid image layout in a
plain tar, every blob where its digest says, both name annotations on every
reference, and the same bytes from the same inputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from harness.build import oci

REFS = ("docker.io/library/busybox:stable", "docker.io/library/busybox:latest")


def small_image(mtime: int = 0, order: tuple[str, ...] = ("bin/sh", "etc/passwd")) -> oci.Image:
    layer = oci.Layer()
    adders = {
        "bin/sh": lambda: layer.file("bin/sh", b"\x7fELF...", 0o755),
        "etc/passwd": lambda: layer.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    }
    for name in order:
        adders[name]()
    layer.link("usr/bin/wget", "/bin/busybox")
    layer.dir("tmp", 0o1777)
    layer.dir("var/lib/nginx/body", 0o700, uid=33, gid=33)
    return oci.Image(layer, {"Cmd": ["sh"]}, REFS, "made by a test", mtime)


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def blob(files: dict[str, bytes], digest: str) -> bytes:
    data = files["blobs/sha256/" + digest.removeprefix("sha256:")]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_the_archive_is_an_oci_layout_with_every_blob_it_names():
    files = members(oci.archive(small_image()))
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2 and index["mediaType"] == oci.MEDIA_INDEX
    entry = index["manifests"][0]
    manifest_bytes = blob(files, entry["digest"])
    assert entry["size"] == len(manifest_bytes)
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == oci.MEDIA_MANIFEST
    config = json.loads(blob(files, manifest["config"]["digest"]))
    layer_gz = blob(files, manifest["layers"][0]["digest"])
    assert manifest["layers"][0]["mediaType"] == oci.MEDIA_LAYER_GZIP
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(layer_gz)).hexdigest()],
    }
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"] == {"Cmd": ["sh"]}
    assert config["history"][0]["created_by"] == "made by a test"


def test_every_reference_is_an_index_entry_named_for_containerd_and_oci():
    index = json.loads(members(oci.archive(small_image()))["index.json"])
    names = [
        (m["annotations"][oci.CONTAINERD_NAME], m["annotations"][oci.OCI_REF_NAME])
        for m in index["manifests"]
    ]
    assert names == [(ref, ref) for ref in REFS]
    assert len({m["digest"] for m in index["manifests"]}) == 1  # one image, two names


def test_the_layer_is_sorted_root_owned_timeless_with_its_parents():
    layer = small_image(mtime=1700000000).layer
    with tarfile.open(fileobj=io.BytesIO(layer.tar(1700000000))) as tar:
        entries = tar.getmembers()
    names = [m.name for m in entries]
    assert names == sorted(names)
    assert {"bin", "usr", "usr/bin", "var/lib/nginx"} <= set(names)
    assert all(m.mtime == 1700000000 for m in entries)
    by_name = {m.name: m for m in entries}
    assert (by_name["var/lib/nginx/body"].uid, by_name["var/lib/nginx/body"].mode) == (33, 0o700)
    assert by_name["tmp"].mode == 0o1777
    assert by_name["usr/bin/wget"].issym() and by_name["usr/bin/wget"].linkname == "/bin/busybox"
    assert all(m.uid == 0 and m.uname == "" for m in entries if m.name != "var/lib/nginx/body")


def test_equal_inputs_give_equal_bytes_whatever_the_order_of_adding():
    first = oci.archive(small_image(order=("bin/sh", "etc/passwd")))
    second = oci.archive(small_image(order=("etc/passwd", "bin/sh")))
    assert first == second
    assert oci.archive(small_image(mtime=1)) != first  # the time is an input
