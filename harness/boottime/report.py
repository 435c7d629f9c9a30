"""Where a run's boot time went (docs/architecture.md "Boot-time gate"): how
many boots, the seconds they took, and the slowest ones with the test that
booted them, as the terminal summary's line and as JSON, with the machines
restored from snapshots beside them (docs/architecture.md "Snapshots")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.boottime.gate import BootRecord

SLOWEST = 5


def boot_report(
    records: list[BootRecord], restores: Sequence[dict[str, Any]] = (), slowest: int = SLOWEST
) -> dict[str, Any]:
    """`restores`: {"machine", "seconds", "owner"} of each restored machine."""
    ranked = sorted(records, key=lambda r: r.seconds, reverse=True)[:slowest]
    return {
        "boots": len(records),
        "boot_seconds": round(sum(r.seconds for r in records), 1),
        "restores": len(restores),
        "restore_seconds": round(sum(r["seconds"] or 0.0 for r in restores), 1),
        "slowest": [
            {
                "seconds": r.seconds,
                "owner": r.owner,
                "machine": r.machine,
                "last_stage": r.stages[-1].name if r.stages else None,
            }
            for r in ranked
        ],
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"boots: {report['boots']} booted cold, {report['boot_seconds']:.0f}s from their first "
        f"console byte to their last stage; {report['restores']} restored from snapshots "
        f"in {report['restore_seconds']:.0f}s"
    ]
    for slow in report["slowest"]:
        where = f"{slow['owner']} ({slow['machine']})" if slow["owner"] else slow["machine"]
        lines.append(f"  {slow['seconds']:6.1f}s {where}, up to {slow['last_stage'] or 'no stage'}")
    return lines
