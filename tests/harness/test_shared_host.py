"""Shared hosts: another local user cannot take a path the harness uses, reach
a guest's shell or console, read a node's secrets or poison the cache
(docs/architecture.md "Shared hosts"). The tests run as root and play her
as nobody (tests/harness/other_user.py)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import labgrid
import pytest
from other_user import NOBODY, as_other_user, needs_root, shared_directory

from harness.artefact import cache_root, sha256_file
from harness.build import debian
from harness.disk import create_overlay
from harness.errors import UserError
from harness.lab import qemu_board
from harness.lab.media import image_format, raw_image, write_file_medium
from harness.private import private_dir, write_shared
from harness.vm import ports

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared(monkeypatch):
    needs_root()
    path = shared_directory()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


# ---- the dev VM's sessions --------------------------------------------------------
@pytest.mark.parametrize("planted", ["directory", "symlink"])
def test_dev_refuses_a_session_root_another_user_made(kubesolo_image, shared, planted):
    """She makes the sessions' root first (open to all, or a link to her own
    directory) with a session of hers in it: `dev` boots nothing and says in
    one line what to remove."""
    root = shared / "kubesolo-dev"
    hers = shared / "hers"
    if planted == "directory":
        made = as_other_user("sh", "-c", f"mkdir -m 0777 {root} && mkdir -m 0777 {root}/evil")
    else:
        made = as_other_user("sh", "-c", f"mkdir -m 0777 {hers} && ln -s {hers} {root}")
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "XDG_RUNTIME_DIR": str(shared)}
    done = harness("dev", "--name", "evil", "--image", str(kubesolo_image.path), "--detach",
                   env=env)  # fmt: skip
    assert done.returncode == 2
    why = "is a symlink" if planted == "symlink" else f"belongs to uid {NOBODY}, not to uid 0"
    assert done.stderr == (
        f"kubesolo-harness dev: error: {root} {why}: remove it (rm -rf {root}) and run again\n"
    )
    assert "[dev]" not in done.stdout  # no VM was started


def test_dev_sessions_are_private_to_their_user(kubesolo_image, shared):
    """Our own sessions' root: 0700 and ours; she cannot list it, nor reach a
    session's sockets or files."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(shared)}
    done = harness("dev", "--name", "mine", "--image", str(kubesolo_image.path), "--detach",
                   env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        root = shared / "kubesolo-dev"
        st = root.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
        for target in (root, root / "mine", root / "mine/console.sock"):
            peek = as_other_user("ls", "-la", str(target))
            assert peek.returncode != 0 and "Permission denied" in peek.stderr, target
    finally:
        harness("dev", "--stop", "mine", env=env)


# ---- the lab board's work directory ------------------------------------------------
def test_the_lab_work_directory_is_never_a_planted_one(kubesolo_image, tmp_path):
    """She makes the old fixed work directory, /tmp/kubesolo-lab-PID, with links
    where root writes (a raw copy being written, the console log): the
    strategy's directory is its own (mkdtemp, 0700), and nothing of hers is
    written through."""
    needs_root()
    predictable = Path(tempfile.gettempdir()) / f"kubesolo-lab-{os.getpid()}"
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    planted = as_other_user(
        "sh", "-c",
        f"mkdir -m 0777 {predictable} && ln -s {victim} {predictable}/data.raw.writing"
        f" && ln -s {victim} {predictable}/console.log && ln -s {victim} {predictable}/data.raw",
    )  # fmt: skip
    assert planted.returncode == 0, planted.stderr
    try:
        env = labgrid.Environment(str(REPO / "fixtures/labgrid/qemu-board.yaml"))
        strategy = env.get_target("main").get_driver("KubeSoloStrategy", activate=False)
        work = strategy.work_dir
        assert work != predictable
        st = work.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
        raw = raw_image(kubesolo_image.data_disk, work)  # what a USB data medium is given
        assert raw.parent == work and raw.stat().st_size > 0
        assert victim.read_text() == "precious\n"
    finally:
        shutil.rmtree(predictable, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_a_medium_is_never_written_through_a_planted_link(kubesolo_image, tmp_path):
    """A `.writing` file where a medium is written (what a killed write left, or
    a link someone put there) is replaced, not written through."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    medium = tmp_path / "board" / "data.qcow2"
    medium.parent.mkdir()
    (medium.parent / "data.qcow2.writing").symlink_to(victim)
    write_file_medium(kubesolo_image.data_disk, medium, "qcow2")
    assert victim.read_text() == "precious\n"
    assert image_format(medium) == "qcow2"


# ---- port locks ------------------------------------------------------------------
def test_port_locks_refuse_a_directory_another_user_made(shared, monkeypatch, tmp_path):
    """She makes the lock directory first, every lock a link to one file of
    root's choosing (or to one inode, so that no port could be reserved):
    reserving refuses it in one line, and nothing is created through a link."""
    root = shared / "kubesolo-harness-ports"
    victim = tmp_path / "nologin"
    made = as_other_user(
        "sh", "-c",
        f"mkdir -m 0777 {root} && for p in $(seq 1024 1100); do ln -s {victim} {root}/$p; done",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    with pytest.raises(UserError) as err:
        ports.reserve_port()
    assert str(err.value) == (
        f"{root} belongs to uid {NOBODY}, not to uid 0: remove it (rm -rf {root}) and run again"
    )
    assert not victim.exists()


def test_a_lock_file_that_is_a_link_is_not_followed(tmp_path):
    """In the user's own lock directory, a link where a lock would be is left
    alone and its port not taken."""
    victim = tmp_path / "victim"
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    port = ports.free_port()
    (locks / str(port)).symlink_to(victim)
    assert ports.try_reserve(port, locks) is None
    assert not victim.exists()


def test_our_port_locks_are_closed_to_others(shared, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    reservation = ports.reserve_port()
    try:
        root = shared / "kubesolo-harness-ports"
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE((root / str(reservation.port)).stat().st_mode) == 0o600
        peek = as_other_user("ls", str(root))
        assert peek.returncode != 0 and "Permission denied" in peek.stderr
    finally:
        reservation.release()


# ---- the QEMU board's serial lines ----------------------------------------------------
def test_no_other_user_reaches_the_qemu_boards_uarts(kubesolo_image, tmp_path, shared):
    """The QEMU board's console and test-shell lines are Unix sockets in a
    directory only root may enter: she can neither connect to them (to type at
    the console or send a test-shell frame) nor put a socket of her own there
    first (to play a fake board). The board's directory is in one she may enter
    (sticky, 1777), so the serial directory's own mode is what stops her."""
    state = shared / "board"
    data = create_overlay(kubesolo_image.data_disk, tmp_path / "data.qcow2")
    wiring = qemu_board.BoardWiring(kubesolo_image.iso, data, state / "serial")
    assert qemu_board.power_on(state, wiring, owner=os.getpid()) == 0
    try:
        for path in wiring.sockets:
            assert qemu_board.listening(path)
            knock = as_other_user(
                sys.executable, "-I", "-c",
                "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
                str(path),
            )  # fmt: skip
            assert knock.returncode != 0 and "PermissionError" in knock.stderr, knock.stderr
        fake = as_other_user("sh", "-c", f"echo x > {state}/serial/fake")
        assert fake.returncode != 0 and "Permission denied" in fake.stderr
        assert stat.S_IMODE((state / "serial").stat().st_mode) == 0o700
    finally:
        qemu_board.power_off(state)


def test_a_qemu_board_refuses_a_serial_directory_another_user_made(kubesolo_image, shared, capsys):
    state = shared / "board"
    made = as_other_user("sh", "-c", f"mkdir -m 0777 {state} {state}/serial")
    assert made.returncode == 0, made.stderr
    wiring = qemu_board.BoardWiring(kubesolo_image.iso, None, state / "serial")
    assert (
        qemu_board.main(["on", "--dir", str(state), "--boot-medium", str(kubesolo_image.iso)]) == 1
    )
    err = capsys.readouterr().err
    assert (
        f"{state} belongs to uid {NOBODY}" in err
        or f"{state}/serial belongs to uid {NOBODY}" in err
    )
    assert not any(qemu_board.listening(p) for p in wiring.sockets)


# ---- a run's artefacts ------------------------------------------------------------
@pytest.mark.qemu_only("a snapshot of QEMU's RAM")
def test_a_runs_guest_ram_disks_and_command_lines_are_closed_to_others(machine_factory):
    """What a run writes is its user's alone (umask 077): she cannot read a
    machine's disk, its QEMU command line or a snapshot of its RAM and disk,
    which hold a node's keys, nor reach its console, QMP or test shell."""
    needs_root()
    vm = machine_factory()
    vm.start()
    vm.wait_for_boot()
    snap = vm.save_snapshot(vm.run_dir / "snapshot")
    secrets = [vm.run_dir / "data-overlay.qcow2", vm.run_dir / "qemu-cmdline.txt"]
    secrets += [snap.ram, snap.disk, snap.state, vm.run_dir / "console.log"]
    for path in secrets:
        assert path.is_file(), path
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        peek = as_other_user("cat", str(path))
        assert peek.returncode != 0 and "Permission denied" in peek.stderr, path
    assert stat.S_IMODE(vm.run_dir.stat().st_mode) == 0o700
    # the console is QEMU's stdin and stdout, pipes with no path, which she
    # cannot open through /proc either
    assert not (vm.socket_dir / "console.sock").exists()
    for fd in (0, 1):
        end = f"/proc/{vm._proc.pid}/fd/{fd}"
        assert os.readlink(end).startswith("pipe:"), end
        peek = as_other_user("dd", f"if={end}", "count=0")
        assert peek.returncode != 0 and "Permission denied" in peek.stderr, end
    # QMP and the test shell: sockets in a directory only root may enter
    assert stat.S_IMODE(vm.socket_dir.stat().st_mode) == 0o700
    for name in ("qmp.sock", "shell.sock"):
        knock = as_other_user(
            sys.executable, "-I", "-c",
            "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
            str(vm.socket_dir / name),
        )  # fmt: skip
        assert knock.returncode != 0 and "PermissionError" in knock.stderr, name


def test_shared_artefacts_are_readable_by_everyone():
    """A report, a chart or JUnit is shared on purpose: readable, in a directory
    others may enter, though the harness's umask is private."""
    needs_root()
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    old = os.umask(0o077)
    try:
        top.chmod(0o755)  # a checkout others may read
        directory = top / "artifacts"
        directory.mkdir()
        write_shared(directory / "release-report.html", "<p>report</p>\n")
        seen = as_other_user("cat", str(directory / "release-report.html"))
        assert seen.returncode == 0 and seen.stdout == "<p>report</p>\n"
    finally:
        os.umask(old)
        shutil.rmtree(top)


# ---- the cache ---------------------------------------------------------------------
@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A cache of this test's own, holding the downloaded packages (linked)."""
    store = tmp_path / "cache" / "kubesolo-harness"
    (store / "debs").mkdir(parents=True)
    for deb in (cache_root() / "debs").glob("*.deb"):
        os.link(deb, store / "debs" / deb.name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(store.parent))
    return store


def flip_a_byte(path: Path, at: int = 4096) -> None:
    """One byte of `path` changed, in a file of its own (never through a hard
    link into the cache the test's own was made from)."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))


@pytest.mark.long
def test_a_damaged_cached_image_is_built_again(own_cache):
    """One byte of a cached image's initramfs changed: the next build sees it
    and builds the image again, instead of handing out the changed one."""
    env = {**os.environ, "XDG_CACHE_HOME": str(own_cache.parent)}
    first = harness("build", env=env)
    assert first.returncode == 0, first.stderr
    image = Path(first.stdout.strip().splitlines()[-1])
    good = image.joinpath("initramfs").read_bytes()
    flip_a_byte(image / "initramfs")
    again = harness("build", env=env)
    assert again.returncode == 0, again.stderr
    assert "initramfs does not match manifest.json" in again.stdout + again.stderr
    assert "cache hit" not in again.stdout + again.stderr
    assert (image / "initramfs").read_bytes() == good


def test_a_changed_deb_and_unpacked_tree_are_not_used(own_cache):
    """A cached .deb with one byte changed is downloaded again (apt's SHA256 for
    its version says so); an unpacked tree with a changed busybox is unpacked
    again: what the builder runs as root is Debian's."""
    (pkg,) = debian.resolve([debian.PackageSpec("busybox-static", "rootfs", ("bin/busybox",))])
    deb = debian.download(pkg, own_cache / "debs")
    expected = debian.apt_sha256s([(pkg.package, pkg.version)])[(pkg.package, pkg.version)]
    assert sha256_file(deb) == expected
    flip_a_byte(deb)
    assert debian.download(pkg, own_cache / "debs") == deb
    assert sha256_file(deb) == expected
    tree = debian.unpacked(pkg, own_cache)
    busybox = (tree / "bin/busybox").read_bytes()
    flip_a_byte(tree / "bin/busybox")
    assert debian.unpacked(pkg, own_cache) == tree
    assert (tree / "bin/busybox").read_bytes() == busybox


def test_a_cache_another_user_made_is_refused(shared):
    """She makes the cache first: the build trusts nothing in it, in one line."""
    made = as_other_user("mkdir", "-m", "0777", str(shared / "kubesolo-harness"))
    assert made.returncode == 0, made.stderr
    done = harness("build", env={**os.environ, "XDG_CACHE_HOME": str(shared)})
    assert done.returncode == 2
    root = shared / "kubesolo-harness"
    assert done.stderr == (
        f"kubesolo-harness build: error: the cache {root}: {root} belongs to uid {NOBODY}, "
        "not to uid 0: the harness trusts nothing in it; remove it, or point XDG_CACHE_HOME "
        "at a directory of your own\n"
    )


def test_a_link_to_her_directory_is_no_way_in(shared, tmp_path):
    """A parent that is a link (ours, or root's) to a directory she may write is
    seen through: nothing private is made inside hers."""
    hers = shared / "hers"
    assert as_other_user("mkdir", "-m", "0777", str(hers)).returncode == 0
    link = tmp_path / "runtime"
    link.symlink_to(hers)
    with pytest.raises(UserError, match=f"{hers} belongs to uid {NOBODY}"):
        private_dir(link / "kubesolo-dev")
    assert not (hers / "kubesolo-dev").exists()
