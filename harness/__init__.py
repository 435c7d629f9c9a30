"""KubeSolo OS test harness: image builder, QEMU machines and boards, and a
pytest plugin (docs/architecture.md "Map").

What a test author uses is importable from here: the capabilities a target
offers (`Target`, `ShellAccess`, `ConsoleAccess`, ...), `MachineConfig`, the
guest contract (`guest`), `retry`, and every error a test may catch. Each
name is imported when first asked for, so that `import harness.errors` (the
builder's, say) loads no machine."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for mypy (a unit test keeps the two lists equal)
    from harness import guest
    from harness.boottime.gate import GateError
    from harness.boottime.guest_clock import ClockError
    from harness.elf import ElfError
    from harness.errors import (
        GuestAssertion,
        HarnessError,
        HarnessTimeout,
        MachineNotRunning,
        ToolFailed,
        UserError,
    )
    from harness.k8s.errors import (
        ApiRejected,
        KubeBlocked,
        KubeconfigError,
        KubeError,
        KubeWaitTimeout,
        ManifestError,
        PreloadError,
    )
    from harness.lab.board import NeedsQemu, SharedConsole, WrongBoard
    from harness.lab.strategy import LabError
    from harness.vm.config import MachineConfig
    from harness.vm.console import BootFailure, ConsoleClosed, ConsoleTimeout
    from harness.vm.driver import CommandFailed, NoTestShell
    from harness.vm.protocols import (
        BootRecord,
        ConsoleAccess,
        ConsoleLog,
        PortForwarding,
        PowerControl,
        ShellAccess,
        Target,
    )
    from harness.vm.retry import retry
    from harness.vm.shell import ShellError, ShellGarbled, ShellTimeout

# name -> the module that defines it
EXPORTS: dict[str, str] = {
    "guest": "harness.guest",
    **dict.fromkeys(
        ["HarnessError", "UserError", "ToolFailed", "GuestAssertion", "HarnessTimeout"],
        "harness.errors",
    ),
    "MachineNotRunning": "harness.errors",
    "MachineConfig": "harness.vm.config",
    "retry": "harness.vm.retry",
    **dict.fromkeys(
        [
            "Target",
            "ShellAccess",
            "ConsoleLog",
            "ConsoleAccess",
            "PowerControl",
            "BootRecord",
            "PortForwarding",
        ],
        "harness.vm.protocols",
    ),
    **dict.fromkeys(["CommandFailed", "NoTestShell"], "harness.vm.driver"),
    **dict.fromkeys(["BootFailure", "ConsoleTimeout", "ConsoleClosed"], "harness.vm.console"),
    **dict.fromkeys(["ShellError", "ShellTimeout", "ShellGarbled"], "harness.vm.shell"),
    "ElfError": "harness.elf",
    "GateError": "harness.boottime.gate",
    "ClockError": "harness.boottime.guest_clock",
    **dict.fromkeys(
        [
            "KubeError",
            "ApiRejected",
            "KubeconfigError",
            "ManifestError",
            "KubeWaitTimeout",
            "KubeBlocked",
            "PreloadError",
        ],
        "harness.k8s.errors",
    ),
    **dict.fromkeys(["SharedConsole", "WrongBoard", "NeedsQemu"], "harness.lab.board"),
    "LabError": "harness.lab.strategy",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    if name == "guest":
        return importlib.import_module(module)
    return getattr(importlib.import_module(module), name)
