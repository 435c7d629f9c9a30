"""One node shared by every worker of a run (docs/architecture.md "Shared nodes")."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from child_pytest import child_pytest

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only]


def run_child_suite(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, *args: str
) -> subprocess.Popen[bytes]:
    """A child pytest run of `source` on `image`; its tests leave what they saw
    in $PROOF_DIR (tmp_path/"proofs"), its artefacts go to tmp_path/"artifacts"."""
    suite = tmp_path / "test_child.py"
    suite.write_text(source)
    (tmp_path / "proofs").mkdir()
    monkeypatch.setenv("PROOF_DIR", str(tmp_path / "proofs"))
    return child_pytest(image, tmp_path / "artifacts", suite, *args)


# Each test leaves what it saw in $PROOF_DIR: its worker, the guest's boot id
# and the host port the node's owner forwarded, after fetching a page through it.
SHARED_SUITE = textwrap.dedent(
    """
    import json, os, pathlib, re, time, urllib.request
    import pytest
    from harness import guest
    from harness.errors import UserError

    def up(vm):
        vm.wait_for_boot()
        vm.succeed("echo brought-up > /run/shared-proof")

    @pytest.fixture(scope="session")
    def node(shared_nodes):
        return shared_nodes.node("proof", {}, up)

    @pytest.mark.parametrize("n", range(6))
    def test_shared(node, n):
        worker = os.environ["PYTEST_XDIST_WORKER"]
        assert node.succeed("cat /run/shared-proof") == "brought-up\\n"
        assert re.search(guest.BOOT_MARKER, node.console_text())
        node.wait_for_boot()
        node.succeed("mkdir -p /run/www && echo page > /run/www/index.html && "
                     "{ pidof httpd >/dev/null || setsid httpd -p 8080 -h /run/www; }")
        port = node.forward_port(8080)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as page:
            assert page.read() == b"page\\n"
        with pytest.raises(UserError, match="shared by every worker"):
            node.reboot()
        time.sleep(2)  # the other worker's tests overlap with this one's
        proof = {"worker": worker, "port": port,
                 "boot": node.succeed("cat /proc/sys/kernel/random/boot_id").strip()}
        out = pathlib.Path(os.environ["PROOF_DIR"]) / f"{worker}-{n}.json"
        out.write_text(json.dumps(proof))
    """
)


@pytest.mark.long
@pytest.mark.parametrize("args", [("-n", "2"), ("-n", "2", "--no-snapshots")])
def test_two_workers_drive_one_node_that_one_of_them_brought_up(
    kubesolo_image, tmp_path, monkeypatch, args
):
    """docs/architecture.md "Shared nodes": in a run of two xdist workers, six
    tests on a shared node get one boot: both workers drive the same guest
    (its boot id, a file "up" wrote, one host port forward serving a page),
    neither may reboot it, the owner keeps it up until the other worker is
    done, and the run's shared-node files are gone when it ends. The same
    holds with --no-snapshots."""
    child = run_child_suite(kubesolo_image.path, tmp_path, monkeypatch, SHARED_SUITE, *args)
    assert child.wait(timeout=600) == 0
    seen = [json.loads(p.read_text()) for p in (tmp_path / "proofs").glob("*.json")]
    assert len(seen) == 6
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    assert len({s["boot"] for s in seen}) == 1
    assert len({s["port"] for s in seen}) == 1
    artifacts = tmp_path / "artifacts"
    report = json.loads((artifacts / "boots.json").read_text())
    assert (report["boots"], report["restores"]) == (1, 0)
    assert not list((artifacts / "snapshots").glob("*/*"))
    assert not list(artifacts.glob("shared-*"))  # a passing run keeps no node directory


# An attached worker kills itself (SIGKILL) in its first test: xdist keeps its
# pid as a zombie until the run ends, and the owner must not wait for it.
CRASH_SUITE = textwrap.dedent(
    """
    import os, pathlib, signal, time
    import pytest

    @pytest.fixture(scope="session")
    def node(shared_nodes):
        return shared_nodes.node("crash", {}, lambda vm: vm.wait_for_boot())

    @pytest.mark.parametrize("n", range(4))
    def test_an_attached_worker_dies(node, shared_nodes, n):
        assert node.succeed("echo up") == "up\\n"
        killed = pathlib.Path(os.environ["PROOF_DIR"]) / "killed"
        if not shared_nodes.owned and not killed.exists():
            killed.write_text(os.environ["PYTEST_XDIST_WORKER"])
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(1)
    """
)


def test_a_crashed_worker_does_not_hold_up_the_owner(kubesolo_image, tmp_path, monkeypatch):
    """docs/architecture.md "Shared nodes" ("Alive means holding a flock"): a
    worker attached to a shared node dies by SIGKILL; the run goes on with a
    new worker, and its end does not wait for the dead one: the child run
    reports the crash and ends."""
    child = run_child_suite(kubesolo_image.path, tmp_path, monkeypatch, CRASH_SUITE, "-n", "2")
    assert child.wait(timeout=600) == 1  # the crash is a failure, not a hang
    assert (tmp_path / "proofs" / "killed").read_text() in ("gw0", "gw1")
    report = json.loads((tmp_path / "artifacts" / "boots.json").read_text())
    assert report["boots"] == 1
