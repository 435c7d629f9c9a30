"""`kubesolo-harness inject-ssh`: a copy of a test or dev image with SSH for
debugging (docs/architecture.md "SSH"): Debian's dropbear and the libraries
it loads, the start hook of build/ssh and one authorized key, laid over the
image's initramfs as a second archive; the ISO and the disk image are made
again around it. Key-only; a release image never gets it."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from harness.artefact import IMAGE_FILES, Image, cache_root, file_digest
from harness.build import cpio, debian, sharedlibs
from harness.build.media import boot_packages, make_media
from harness.build.rootfs import BUILD_DIR, Rootfs
from harness.errors import UserError

# dropbear and the packages of the libraries it loads (libc6: the image has it)
SSH_PACKAGES = ("dropbear-bin", "libtomcrypt1", "libtommath1", "zlib1g", "libcrypt1", "libgmp10")
IN_IMAGE = ("libc6",)
DROPBEAR = "usr/sbin/dropbear"
HOOK_TREE = BUILD_DIR / "ssh"
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


def public_key(path: Path) -> str:
    """The one public key line of `path`; anything else is one line saying what."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--key {path}: cannot read it ({err})") from None
    if "PRIVATE KEY" in text:
        raise UserError(f"--key {path} is a private key: give the public one ({path}.pub)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1 or lines[0].split()[0] not in KEY_TYPES or len(lines[0].split()) < 2:
        raise UserError(
            f"--key {path}: not one OpenSSH public key line ({', '.join(KEY_TYPES)} ...)"
        )
    return lines[0]


def ssh_layer(key: str) -> Rootfs:
    """What the image gains: dropbear, its libraries, the hook, the key."""
    specs = [debian.PackageSpec(name, "ssh", ()) for name in (*SSH_PACKAGES, *IN_IMAGE)]
    cache = cache_root()
    resolved = debian.resolve_memoized(specs, cache / "apt-resolution-ssh.json")
    tree = sharedlibs.UnionTree({p.package: debian.unpacked(p, cache) for p in resolved})
    closure = sharedlibs.closure(tree, [DROPBEAR])
    if closure.missing:
        soname, needer = closure.missing[0]
        raise UserError(f"inject-ssh: {soname} (needed by /{needer}) is in none of {SSH_PACKAGES}")
    layer = Rootfs()
    for rel in closure.paths:
        if tree.owner(rel) not in IN_IMAGE:
            layer.add_path(rel, tree.roots[tree.owner(rel) or ""] / rel)
    layer.add_tree(HOOK_TREE)
    layer.add(cpio.Entry.directory("root", 0o700))
    layer.add(cpio.Entry.directory("root/.ssh", 0o700))
    layer.add(cpio.Entry.file("root/.ssh/authorized_keys", (key + "\n").encode(), 0o600))
    layer.add(cpio.Entry.directory("etc/dropbear", 0o700))
    return layer


def inject_ssh(image: Image, key_file: Path, out: Path) -> Image:
    """`out`: `image` with SSH for debugging. Refuses a release image."""
    manifest = image.manifest
    if manifest.get("flavour") != "test":
        raise UserError(
            f"{image.path} is a {manifest.get('flavour')} image: SSH goes into test and dev "
            "images only, never a release"
        )
    if out.resolve() == image.path.resolve():
        raise UserError("inject-ssh: --out must be another directory than the image's")
    key = public_key(key_file)
    archive = ssh_layer(key).archive()
    new_key = hashlib.sha256(manifest["cache_key"].encode() + archive).hexdigest()[:24]
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".inject-ssh-", dir=out))
    try:
        shutil.copyfile(image.kernel, work / "vmlinuz")
        shutil.copyfile(image.data_disk, work / "data.qcow2")
        with (work / "initramfs").open("wb") as f, image.initramfs.open("rb") as base:
            shutil.copyfileobj(base, f)
            f.write(archive)  # the kernel unpacks the archives in order: ours last
        make_media(work, new_key, boot_packages(BUILD_DIR, cache_root()), BUILD_DIR, "test")
        files = {n: file_digest(work / n) for n in IMAGE_FILES if n != "manifest.json"}
        ssh = {"authorized_key": key, "packages": list(SSH_PACKAGES), "of": manifest["cache_key"]}
        derived = {**manifest, "cache_key": new_key, "files": files, "ssh": ssh}
        derived["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (work / "manifest.json").write_text(json.dumps(derived, indent=2) + "\n")
        for name in IMAGE_FILES:
            (work / name).replace(out / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Image.open(out)
