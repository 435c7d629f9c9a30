#!/usr/bin/env bash
# Installs what the project needs on Debian 12 (as root): the host tools from
# Debian's packages and a virtualenv (.venv) with the harness and its checks.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_PACKAGES=(
    qemu-system-x86 qemu-utils   # the VMs and their qcow2 disks
    xorriso                      # the bootable ISO
    mtools dosfstools            # the EFI system partitions (FAT, made without root)
    gdisk                        # sgdisk: the disk image's GPT
    grub-common                  # grub-mkimage: the disk image's BIOS GRUB
    ovmf                         # UEFI firmware for the VMs, with Secure Boot
    openssh-client               # the SSH tests log in as a user would
    e2fsprogs                    # mkfs.ext4 for the blank data disk
    shellcheck                   # the OS's shell files are checked
    busybox-static               # unit tests run the OS's shell logic in busybox sh
    python3 python3-venv procps
)

missing=()
for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# The image builder fetches Debian packages with apt-get download: it needs
# current package lists even when nothing is missing. Without a network, the
# lists and the packages already cached (~/.cache/kubesolo-harness) still serve.
echo "[setup] apt-get update"
if ! timeout 300 apt-get update -qq -o Acquire::Retries=0 -o Acquire::http::Timeout=20; then
    [ ${#missing[@]} -eq 0 ] || { echo "[setup] apt-get update failed and ${missing[*]} are missing" >&2; exit 1; }
    echo "[setup] warning: apt-get update failed (no network?): using the package lists on this machine" >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    python3 -m venv .venv
fi
# A wheelhouse of the project's Python dependencies, refreshed whenever
# pyproject.toml changes: a later setup on this machine works without PyPI.
WHEELHOUSE=${XDG_CACHE_HOME:-$HOME/.cache}/kubesolo-harness/wheels
STAMP="$WHEELHOUSE/pyproject.sha256"
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
requirements() {
    .venv/bin/python - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))
for line in project["project"]["dependencies"] + project["project"]["optional-dependencies"]["dev"]:
    print(line)
print(*project["build-system"]["requires"], sep="\n")
PY
}
echo "[setup] installing the harness into .venv"
if "${PIP[@]}" install -q --retries 1 --timeout 20 -e '.[dev]'; then
    if [ "$(cat "$STAMP" 2>/dev/null)" != "$(sha256sum < pyproject.toml)" ]; then
        echo "[setup] filling the wheelhouse $WHEELHOUSE"
        mkdir -p "$WHEELHOUSE"
        requirements > "$WHEELHOUSE/requirements.txt"
        # Into a fresh directory first: pip deletes a wheel it cannot check
        # against the index, and an offline machine (every requirement
        # already in .venv) must keep the wheelhouse it has.
        fill=$(mktemp -d "$WHEELHOUSE/.fill-XXXXXX")
        if "${PIP[@]}" download -q --retries 1 --timeout 20 -d "$fill" \
            -r "$WHEELHOUSE/requirements.txt" wheel 2>/dev/null; then
            mv -f "$fill"/* "$WHEELHOUSE"/
            sha256sum < pyproject.toml > "$STAMP"
        else
            echo "[setup] could not fill the wheelhouse (PyPI unreachable): keeping what it holds" >&2
        fi
        rm -rf "$fill"
    fi
else
    echo "[setup] PyPI unreachable: installing from the wheelhouse $WHEELHOUSE" >&2
    "${PIP[@]}" install -q --no-index --find-links "$WHEELHOUSE" -e '.[dev]'
fi
