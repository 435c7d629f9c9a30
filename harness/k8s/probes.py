"""What probes print, parsed: the suites' probe pods (fixtures/manifests/*-probe.yaml:
busybox `wget -S` status lines, the HTTP probe's verdict, `nslookup` answers) and the
guest's own commands (harness.k8s.commands)."""

from __future__ import annotations

import re

HTTP_STATUS = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})")
NSLOOKUP_NAME = re.compile(r"^Name:\s*(\S+)")
NSLOOKUP_ADDRESS = re.compile(r"^Address(?:\s+\d+)?:\s*([0-9a-fA-F:.]+?)(?:#\d+)?(?:\s|$)")


# The HTTP probe's last line (fixtures/manifests/http-probe.yaml).
VERDICT = re.compile(r"^http-probe: (answered|timeout|failed)(?:: (.*))?$", re.MULTILINE)
ANSWERED, TIMED_OUT, FAILED = "answered", "timeout", "failed"


def probe_verdict(output: str) -> tuple[str, str] | None:
    """(answered | timeout | failed, detail) from the HTTP probe's log; None when the probe
    never got to say (the pod was killed or never ran its script)."""
    found = VERDICT.findall(output)
    if not found:
        return None
    verdict, detail = found[-1]
    return verdict, detail.strip()


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


IPV4_ADDRESS = re.compile(r"\binet (\d{1,3}(?:\.\d{1,3}){3})/")


def ipv4_addresses(output: str) -> set[str]:
    """Addresses in `ip -4 -o addr show` output."""
    return set(IPV4_ADDRESS.findall(output))
