"""Choosing QEMU's accelerator. /dev/kvm can exist while guests hang under
it, so `auto` boots the image's kernel under KVM for a few seconds and uses
KVM only if the kernel got as far as printing; the verdict is cached per host
(kernel, QEMU version, /dev/kvm) and the fallback reason is said once."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.artefact import cache_root
from harness.errors import UserError
from harness.log import logger

log = logger("vm.accel")
PROBE_TIMEOUT = 8.0
PROBE_MARKER = b"Linux version"


@dataclass(frozen=True)
class Verdict:
    accel: str  # "kvm" or "tcg"
    reason: str


def decide(requested: str, kvm_usable: bool | None, kvm_reason: str = "") -> Verdict:
    """The accelerator for a request, given the probe's answer (None: not probed)."""
    if requested in ("tcg", "kvm"):
        return Verdict(requested, f"--accel {requested} requested")
    if requested != "auto":
        raise UserError(f"unknown accel {requested!r}: use auto, kvm or tcg")
    if kvm_usable:
        return Verdict("kvm", "KVM probe booted a kernel")
    return Verdict("tcg", f"KVM unusable ({kvm_reason or 'no /dev/kvm'}): using TCG")


def host_key(qemu: str) -> str:
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False)
    kvm = os.path.exists("/dev/kvm")
    raw = f"{platform.node()}|{platform.release()}|{version.stdout.strip()}|{kvm}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def probe_kvm(qemu: str, kernel: Path, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Boot `kernel` under KVM with no initramfs; usable if it prints."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm missing or not accessible"
    cmd = [
        qemu,
        "-machine",
        "q35,accel=kvm",
        "-m",
        "256",
        "-nographic",
        "-no-reboot",
        "-nodefaults",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]
    started = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    if PROBE_MARKER in out:
        return True, f"kernel printed under KVM in {time.monotonic() - started:.1f}s"
    return False, f"a kernel under KVM printed nothing within {timeout:.0f}s"


def resolve(requested: str, qemu: str, kernel: Path) -> Verdict:
    """The accelerator to use; `auto` probes once per host and caches."""
    if requested != "auto":
        return decide(requested, None)
    cache = cache_root() / f"accel-{host_key(qemu)}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache) + ".lock"):
        if cache.exists():
            data = json.loads(cache.read_text())
            return Verdict(data["accel"], data["reason"])
        usable, reason = probe_kvm(qemu, kernel)
        verdict = decide("auto", usable, reason)
        cache.write_text(json.dumps({"accel": verdict.accel, "reason": verdict.reason}))
    log.info("[accel] %s", verdict.reason)
    return verdict


def cached_verdict(qemu: str = "qemu-system-x86_64") -> Verdict | None:
    """This host's cached `auto` verdict, if a probe ran."""
    try:
        cache = cache_root() / f"accel-{host_key(qemu)}.json"
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    return Verdict(data["accel"], data["reason"])
