"""What the Kubernetes suites were told on the command line, and the machine a
KubeSolo node needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.k8s.commands import IMAGES_SHARE_TAG

# One budget for KubeSolo's own start, from stage 90 to its system rollouts (README "Timing
# budget"). On a fast host KubeSolo is Ready in about a minute (docs/kubesolo.md "Health")
# and rolled out in about 100 s, estimated: its own end-to-end test allows 240 s for each of
# node Ready, CoreDNS and local-path. TCG runs that CPU-bound start an assumed 5 to 10 times
# slower: 100 s x 10 = 1000 s, and a fifth more for a slow hour on a shared host = 1200 s.
# Blockers end a hopeless wait at once, so the size costs time only on a slow, healthy node.
# The OS boot before it is budgeted by the machine's one boot timeout (--boot-timeout).
DEFAULT_K8S_TIMEOUT = 1200.0


@dataclass(frozen=True)
class KubeSettings:
    """What the suites were told on the command line."""

    timeout: float = DEFAULT_K8S_TIMEOUT
    images_dir: Path | None = None
    nginx_image: str = "docker.io/library/nginx:stable"
    busybox_image: str = "docker.io/library/busybox:stable"
    expect_netpol_enforced: bool = False
    memory_mb: int = 2048  # KubeSolo's floor; --vm-memory may raise it
    cpus: int = 2


def machine_config(settings: KubeSettings) -> dict[str, Any]:
    """MachineConfig fields for a KubeSolo node: room for it, and the image archives."""
    shares = {IMAGES_SHARE_TAG: settings.images_dir} if settings.images_dir else {}
    return {
        "name": "kubesolo",
        "memory_mb": settings.memory_mb,
        "cpus": settings.cpus,
        "data_disk": True,
        "shares": shares,
    }
