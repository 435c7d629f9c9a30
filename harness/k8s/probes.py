"""What the suites' probe pods print (fixtures/manifests/*-probe.yaml), parsed:
busybox `wget -S` status lines and `nslookup` answers."""

from __future__ import annotations

import re

HTTP_STATUS = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})")
NSLOOKUP_NAME = re.compile(r"^Name:\s*(\S+)")
NSLOOKUP_ADDRESS = re.compile(r"^Address(?:\s+\d+)?:\s*([0-9a-fA-F:.]+?)(?:#\d+)?(?:\s|$)")


def parse_http_status(output: str) -> int | None:
    """Final status line printed by busybox `wget -S` (headers go to stderr, i.e. the log)."""
    codes = HTTP_STATUS.findall(output)
    return int(codes[-1]) if codes else None


def resolved_addresses(output: str, name: str) -> set[str]:
    """Addresses busybox nslookup gave for `name` (old and new output formats)."""
    found: set[str] = set()
    current = None
    for line in output.splitlines():
        line = line.strip()
        named = NSLOOKUP_NAME.match(line)
        if named:
            current = named.group(1).rstrip(".")
            continue
        address = NSLOOKUP_ADDRESS.match(line)
        if address and current == name.rstrip("."):
            found.add(address.group(1))
        elif not line:
            current = None
    return found
