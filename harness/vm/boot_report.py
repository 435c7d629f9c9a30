"""Where a run's boot time went (docs/architecture.md "Boot-time gate"): how
many boots, the seconds they took, and the slowest ones with the test that
booted them, as the terminal summary's line and as JSON. Restores from
snapshots would be counted beside them; the suites boot cold today."""

from __future__ import annotations

from typing import Any

from harness.vm.boot_gate import BootRecord

SLOWEST = 5


def boot_report(records: list[BootRecord], slowest: int = SLOWEST) -> dict[str, Any]:
    ranked = sorted(records, key=lambda r: r.seconds, reverse=True)[:slowest]
    return {
        "boots": len(records),
        "boot_seconds": round(sum(r.seconds for r in records), 1),
        "restores": 0,
        "restore_seconds": 0.0,
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
        f"console byte to their last stage; {report['restores']} restored from snapshots"
    ]
    for slow in report["slowest"]:
        where = f"{slow['owner']} ({slow['machine']})" if slow["owner"] else slow["machine"]
        lines.append(f"  {slow['seconds']:6.1f}s {where}, up to {slow['last_stage'] or 'no stage'}")
    return lines
