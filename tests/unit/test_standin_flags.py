"""The stand-in and stage 90 know the same KubeSolo flags (docs/kubesolo.md
"Command line"): the booleans stage 90 merges as --X/--no-X pairs are exactly the
stand-in's booleans, so neither can drift from the other unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "build/standin/kubesolo"
FUNCTIONS = REPO / "build/rootfs/usr/lib/kubesolo-os/functions.sh"


def standin_flags() -> dict[str, str]:
    text = re.search(r'KUBESOLO_FLAGS="([^"]*)"', STANDIN.read_text(), re.S).group(1)
    return dict(entry.split(":") for entry in text.split())


def stage90_booleans() -> set[str]:
    return set(re.search(r'KUBESOLO_BOOL_FLAGS="([^"]*)"', FUNCTIONS.read_text()).group(1).split())


def test_the_booleans_agree():
    booleans = {name for name, kind in standin_flags().items() if kind == "bool"}
    assert booleans == stage90_booleans()


def test_the_flags_kubesolo_documents_are_known():
    assert set(standin_flags()) >= {
        "path", "apiserver-extra-sans", "local-storage", "debug", "startup-timeout", "node-ip",
        "container-mode", "db-wal-repair", "disable-ipv6", "config", "mtu",
        "container-runtime-endpoint", "metrics-server", "version",
    }  # fmt: skip
