"""What a KubeSolo node asks of the machine it runs on (docs/architecture.md
"Targets"): a QEMU Machine and a shared node's RemoteMachine both have it."""

from __future__ import annotations

from typing import Protocol

from harness.vm.protocols import ConsoleLog, PortForwarding, ShellAccess


class KubeHost(ShellAccess, ConsoleLog, PortForwarding, Protocol):
    """The test shell, the console's text (for its failures), port forwards
    to the API, and a clean reboot."""

    def reboot(self) -> None: ...
