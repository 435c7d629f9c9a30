#!/usr/bin/env bash
# Installs what the project needs on Debian 12 (as root): the host tools from
# Debian's packages and a virtualenv (.venv) with the harness and its checks.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_PACKAGES=(
    qemu-system-x86 qemu-utils   # the VMs and their qcow2 disks
    xorriso                      # the bootable ISO
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
# current package lists even when nothing is missing.
echo "[setup] apt-get update"
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    python3 -m venv .venv
fi
echo "[setup] installing the harness into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
