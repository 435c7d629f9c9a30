"""The guest contract: what KubeSolo OS prints and where it keeps things, as
the harness and the suites rely on it (docs/boot-flow.md). Nothing else in
the harness or the tests spells a marker or one of these paths."""

from __future__ import annotations

import re
from pathlib import Path

# ---- the stages, in the order init runs them (docs/boot-flow.md "Overview") ----
# the OS's own stage files, which init runs in this order: the one list of them
STAGE_DIR = Path(__file__).resolve().parents[1] / "build/rootfs/usr/lib/kubesolo-os/init.d"
STAGES = tuple(sorted(path.name for path in STAGE_DIR.glob("[0-9][0-9]-*.sh")))
if not STAGES:  # the harness runs from a checkout of the OS it tests
    raise ImportError(f"harness.guest: no stage files in {STAGE_DIR}: run from a checkout")
LAST_STAGE = STAGES[-1]

# ---- console markers (docs/boot-flow.md "Boot markers") ----
INIT_PREFIX = "[kubesolo-init]"
_PREFIX = re.escape(INIT_PREFIX)
STAGE_NAME = r"\d\d-[\w.-]+\.sh"


def stage_started(stage: str = STAGE_NAME) -> str:
    """Regex of the line init prints when a stage starts (a name or the name pattern)."""
    name = stage if stage == STAGE_NAME else re.escape(stage)
    return rf"{_PREFIX} \[INFO\] Stage ({name}) starting"


def stage_done(stage: str = STAGE_NAME) -> str:
    """Regex of the line init prints when a stage completes."""
    name = stage if stage == STAGE_NAME else re.escape(stage)
    return rf"{_PREFIX} \[OK\] Stage ({name}) complete"


def stage_failed(stage: str = STAGE_NAME) -> str:
    """Regex of the line init prints when a stage fails."""
    name = stage if stage == STAGE_NAME else re.escape(stage)
    return rf"{_PREFIX} \[ERROR\] Stage ({name}) failed"


BOOT_MARKER = stage_done(LAST_STAGE)  # a full boot: the success marker
ERROR_MARKER = rf"{_PREFIX} \[ERROR\]"  # any stage failure
WARN_MARKER = rf"{_PREFIX} \[WARN\]"
# init's supervisor (docs/boot-flow.md "Supervision"): KubeSolo exited and
# starts again (a warning), or it failed too often, too fast (a failure)
KUBESOLO_RESTART = rf"{_PREFIX} \[WARN\] KubeSolo exited \((.+?) after (\d+)s, fast failure"
KUBESOLO_GAVE_UP = rf"{_PREFIX} \[ERROR\] Giving up on KubeSolo: (\d+) fast failures in a row"
STANDIN_ACCEPTED = r"^\[kubesolo-standin\] accepted: (.*?)\r?$"  # the test flavour's KubeSolo
EMERGENCY_PROMPT = r"\(kubesolo-emergency\) # "
SHELL_PROMPT = r"\(kubesolo-shell\) # "
ISOLINUX_PROMPT = r"(?<![^\r\n])boot: "  # at a line start: not "reboot: Restarting"
GRUB_MENU = r"Use the \S+ and \S+ keys to select which entry is highlighted"
# GRUB's "next entry" key, Ctrl-N: one byte. The down arrow's escape
# sequence was lost under load: GRUB waits only 100 ms for the rest of an
# escape, then takes ESC alone, and the menu stopped one entry short.
MENU_DOWN = "\x0e"
# GRUB's editor shows an entry as `setparams 'LABEL'`, then the entry's lines
# (harness.build.boot_menu.grub_cfg): the empty one after `{`, then `linux`
GRUB_EDITOR_LINUX_LINE = 2

# ---- boot parameters and labels (docs/boot-flow.md "Bootloader") ----
LABELS = ("kubesolo", "kubesolo-debug", "kubesolo-shell", "kubesolo-nopersist")
# the release image's menus (docs/boot-flow.md "Release console"): no shell label
RELEASE_LABELS = ("kubesolo", "kubesolo-debug", "kubesolo-nopersist")
DEFAULT_LABEL = "kubesolo"
DATA_LABEL = "KSOLODATA"
DATA_PARAM = f"kubesolo.data=LABEL={DATA_LABEL}"

# ---- guest paths ----
DATA_MNT = "/mnt/data"
RUN_DIR = "/run/kubesolo-os"
BOOT_ENV = f"{RUN_DIR}/boot.env"  # stage 10's parsed parameters
NETWORK_ENV = f"{RUN_DIR}/network.env"  # stage 50's choice
SHELL_MARK = f"{RUN_DIR}/shell"  # which interactive shell init opened
KUBESOLO_PATH = "/var/lib/kubesolo"
ADMIN_KUBECONFIG = f"{KUBESOLO_PATH}/pki/admin/admin.kubeconfig"
KUBESOLO_BIN = "/usr/local/bin/kubesolo"
KUBESOLO_IN_IMAGE = "/usr/lib/kubesolo-os/bin/kubesolo"
INIT_FUNCTIONS = "/usr/lib/kubesolo-os/functions.sh"  # the stages' shared helpers
STANDIN_ARGV = "/run/kubesolo-standin/argv"
STAGE_CLOCK_FILE = f"{RUN_DIR}/stage-clock"  # init: "STAGE start|end UPTIME" lines
KUBESOLO_PID_FILE = f"{RUN_DIR}/kubesolo.pid"  # the supervised KubeSolo's PID
KUBESOLO_PROC = f"/proc/$(cat {KUBESOLO_PID_FILE})"  # a shell word: its /proc directory


# ---- power, from a shell in the guest (docs/boot-flow.md "Supervision") ----
# busybox's reboot and poweroff signal PID 1, which stops KubeSolo and every
# process, unmounts and syncs. A console shell (kubesolo.shell, the emergency
# shell) holds PID 1 until it exits, and KubeSolo has not started then: sync
# and go down at once.
def _power_command(action: str) -> str:
    return f"if [ -e {SHELL_MARK} ]; then sync; {action} -f; else {action}; fi"


REBOOT_COMMAND = _power_command("reboot")
POWEROFF_COMMAND = _power_command("poweroff")
SAVED_NETWORK = f"{DATA_MNT}/network/interfaces.sh"
# docs/boot-flow.md "Stage 20": (directory on the data partition, mount point)
BIND_MOUNTS = (
    ("kubesolo", KUBESOLO_PATH),
    ("containerd", "/var/lib/containerd"),
    ("etc-kubesolo", "/etc/kubesolo"),
    ("log", "/var/log"),
    ("usr-local", "/usr/local"),
)

# ---- the test shell (test flavour) ----
SHELL_PORT_NAME = "org.kubesolo.shell"  # its virtio serial port
