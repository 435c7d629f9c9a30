"""Plain HTTP from the host to a guest port forward (NodePort checks)."""

from __future__ import annotations

import urllib.request

# Forwards listen on 127.0.0.1: a proxy from the environment could never reach them.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of a plain GET from the host."""
    with DIRECT.open(url, timeout=timeout) as response:
        return int(response.status), response.read().decode("utf-8", "replace")
