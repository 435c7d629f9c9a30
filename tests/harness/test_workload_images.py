"""The workload images (README "Workload images"): `kubesolo-harness images`
builds nginx:stable and busybox:stable/latest from Debian packages as OCI
archives that are valid, hold what they promise, run for real (in a chroot of
their layer, then as containers of a throwaway containerd from Debian's
containerd 1.6 that imports them under their full names), and come out
byte-identical from a second, independent build."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from child_pytest import as_from_a_terminal

from harness.artefact import cache_root
from harness.build import debian, oci
from harness.build import workload_images as wi
from harness.build import workload_recipes as wr
from harness.vm.ports import reserve_port

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="chroot, mount namespaces and containerd need root"
)
WAIT = 60.0  # seconds: generous, other builds and VMs share the host


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return wi.build_workload_images(tmp_path_factory.mktemp("images"))


@dataclass
class Parts:
    """An archive read back: its files, index, manifest, config and layer."""

    files: dict[str, bytes]
    index: dict
    manifest: dict
    config: dict
    layer: bytes  # the uncompressed layer tar

    def blob(self, digest: str) -> bytes:
        data = self.files["blobs/sha256/" + digest.removeprefix("sha256:")]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, "blob digest mismatch"
        return data

    def layer_names(self) -> dict[str, tarfile.TarInfo]:
        with tarfile.open(fileobj=io.BytesIO(self.layer)) as tar:
            return {m.name.rstrip("/"): m for m in tar.getmembers()}

    def layer_file(self, name: str) -> bytes:
        with tarfile.open(fileobj=io.BytesIO(self.layer)) as tar:
            return tar.extractfile(name).read()  # type: ignore[union-attr]


def read(archive: Path) -> Parts:
    with tarfile.open(archive) as tar:
        files = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    index = json.loads(files["index.json"])
    parts = Parts(files, index, {}, {}, b"")
    entry = index["manifests"][0]
    parts.manifest = json.loads(parts.blob(entry["digest"]))
    parts.config = json.loads(parts.blob(parts.manifest["config"]["digest"]))
    parts.layer = gzip.decompress(parts.blob(parts.manifest["layers"][0]["digest"]))
    return parts


def unpack_layer(parts: Parts, dest: Path) -> Path:
    """The layer's files as a runtime would lay them out (owners and modes kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)  # the root of the image: nginx's workers must traverse it
    subprocess.run(
        ["tar", "-x", "-p", "--numeric-owner", "-C", str(dest)], input=parts.layer, check=True
    )
    return dest


# ---- the archives ---------------------------------------------------------


def test_the_cli_builds_both_archives_and_prints_one_line_each(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "images", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("[")]
    assert lines == [
        f"{tmp_path / 'nginx.tar'} {wr.NGINX_REF}",
        f"{tmp_path / 'busybox.tar'} {' '.join(wr.BUSYBOX_REFS)}",
    ]


@pytest.mark.parametrize("name", ["nginx", "busybox"])
def test_each_archive_is_an_oci_layout_naming_its_full_references(archives, name):
    parts = read(archives[name])
    assert json.loads(parts.files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    entries = parts.index["manifests"]
    assert [e["annotations"][oci.CONTAINERD_NAME] for e in entries] == list(wr.REFS[name])
    assert [e["annotations"][oci.OCI_REF_NAME] for e in entries] == list(wr.REFS[name])
    for entry in entries:
        assert entry["mediaType"] == oci.MEDIA_MANIFEST
        assert entry["size"] == len(parts.blob(entry["digest"]))
    assert parts.manifest["config"]["mediaType"] == oci.MEDIA_CONFIG
    assert parts.config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(parts.layer).hexdigest()
    ]
    assert (parts.config["architecture"], parts.config["os"]) == ("amd64", "linux")
    assert parts.config["config"]["Env"] == [wr.PATH_ENV]
    assert parts.config["config"]["User"] == "0:0"
    assert parts.config["config"]["WorkingDir"] == "/"
    assert "Debian 12 packages" in parts.config["history"][0]["created_by"]


def test_the_nginx_config_runs_nginx_in_the_foreground_on_port_80(archives):
    config = read(archives["nginx"]).config["config"]
    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert config["ExposedPorts"] == {"80/tcp": {}}
    assert config["StopSignal"] == "SIGQUIT"
    assert "Entrypoint" not in config


def test_the_nginx_layer_holds_nginx_its_libraries_its_user_and_its_config(archives):
    parts = read(archives["nginx"])
    names = parts.layer_names()
    for path in (
        "usr/sbin/nginx",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libcrypt.so.1",
        "lib/x86_64-linux-gnu/libz.so.1",
        "usr/lib/x86_64-linux-gnu/libssl.so.3",
        "usr/lib/x86_64-linux-gnu/libcrypto.so.3",
        "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
        "etc/nginx/mime.types",
        "usr/share/nginx/html/index.html",
        "usr/share/doc/libssl3/copyright",
    ):
        assert path in names, path
    # Only what the loader loads: none of libc6's other files.
    assert not [n for n in names if "gconv" in n or n.startswith("usr/share/locale")]
    assert names["usr/sbin/nginx"].mode & 0o111
    assert b"www-data:x:33:33:" in parts.layer_file("etc/passwd")
    assert b"www-data:x:33:" in parts.layer_file("etc/group")
    assert (
        parts.layer_file("etc/nginx/nginx.conf")
        == dict(wr.NGINX.files)["etc/nginx/nginx.conf"].encode()
    )
    body = names["var/lib/nginx/body"]
    assert (body.uid, body.mode & 0o777) == (33, 0o700)


def test_the_busybox_layer_has_a_link_for_every_applet_a_pod_uses(archives):
    names = read(archives["busybox"]).layer_names()
    assert names["bin/busybox"].isfile()
    for applet in ("bin/sh", "usr/bin/wget", "usr/bin/nslookup", "bin/sleep", "bin/cat"):
        assert names[applet].issym() and names[applet].linkname == "/bin/busybox", applet


def test_a_second_build_is_a_cache_hit(archives, caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="harness.build"):
        again = wi.build_workload_images(tmp_path)
    for name, path in again.items():
        assert path.read_bytes() == archives[name].read_bytes()
    hits = [r.getMessage() for r in caplog.records if "cache hit" in r.getMessage()]
    assert len(hits) == 2, hits


def test_an_independent_build_is_byte_identical(archives, tmp_path):
    """Another process, another hash seed, an empty cache (but the downloaded
    packages) holding only what a killed build left: the same bytes, and the
    leftovers gone."""
    store = tmp_path / "cache" / "kubesolo-harness"
    (store / "debs").mkdir(parents=True)
    for deb in (cache_root() / "debs").glob("*.deb"):  # planning looks into more than it takes
        try:
            os.link(deb, store / "debs" / deb.name)
        except OSError:
            shutil.copy2(deb, store / "debs")
    leftovers = []
    for recipe in wr.RECIPES.values():
        cached = wi.build_archive(recipe).parent  # the key does not depend on the cache
        work = store / "workload-images" / f"{cached.name}.k1ll3d"  # a killed build's
        work.mkdir(parents=True)
        (work / f"{recipe.name}.tar").write_bytes(b"half an archive")
        leftovers.append(work)
    env = {**os.environ, "XDG_CACHE_HOME": str(store.parent), "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "images", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "cache hit" not in done.stdout  # really built again
    assert done.stdout.count("leftovers of a killed build") == 2
    assert not any(work.exists() for work in leftovers)
    for name, path in archives.items():
        rebuilt = tmp_path / "out" / f"{name}.tar"
        assert rebuilt.read_bytes() == path.read_bytes(), f"{name}.tar differs"


# ---- run in a chroot of the layer -----------------------------------------


@ROOT_ONLY
def test_nginx_accepts_its_config_in_the_image_root(archives, tmp_path):
    root = unpack_layer(read(archives["nginx"]), tmp_path / "root")
    done = subprocess.run(
        ["chroot", str(root), "nginx", "-t"], capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "stat").read_text().split()[3] == str(pid):
                found.append(int(entry.name))
    return found


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def children_once_all_are(uid: int, parent: int, deadline: float) -> list[int]:
    """A process's children once every one runs as `uid`: nginx's workers
    drop their privileges just after they fork, so one may still be root
    while another already serves."""
    while True:
        with contextlib.suppress(OSError):  # a child that ended meanwhile
            found = children(parent)
            if found and all(uid_of(child) == uid for child in found):
                return found
        if time.monotonic() > deadline:
            return children(parent)
        time.sleep(0.1)


def fetch(url: str, deadline: float) -> tuple[int, bytes]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@ROOT_ONLY
def test_nginx_serves_its_page_from_the_image_root(archives, tmp_path):
    """The image's own nginx.conf, only `listen` moved to a free local port; its
    /dev (for /dev/stdout) and /proc are those a runtime would mount."""
    root = unpack_layer(read(archives["nginx"]), tmp_path / "root")
    reservation = reserve_port()
    conf = (root / "etc/nginx/nginx.conf").read_text()
    assert "listen 80;" in conf
    test_conf = conf.replace("listen 80;", f"listen 127.0.0.1:{reservation.port};")
    (root / "etc/nginx/test.conf").write_text(test_conf)
    script = (
        f'mount --rbind /dev "{root}/dev" && mount -t proc proc "{root}/proc" && '
        f'exec chroot "{root}" nginx -c /etc/nginx/test.conf -g "daemon off;"'
    )
    master = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        status, body = fetch(f"http://127.0.0.1:{reservation.port}/", time.monotonic() + WAIT)
        assert status == 200 and b"Welcome to nginx!" in body
        workers = children_once_all_are(33, master.pid, time.monotonic() + WAIT)
        assert workers and all(uid_of(w) == 33 for w in workers)  # www-data
        assert uid_of(master.pid) == 0
        master.send_signal(signal.SIGQUIT)  # the image's StopSignal: a graceful stop
        out, err = master.communicate(timeout=WAIT)
        assert master.returncode == 0, err
        assert b'"GET / HTTP/1.1" 200' in out  # the access log goes to stdout
        assert b"gracefully shutting down" in err  # the error log to stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master.pid, signal.SIGKILL)
        master.wait()
        reservation.release()


@ROOT_ONLY
def test_busybox_runs_a_shell_and_the_applets_pods_use(archives, tmp_path):
    root = unpack_layer(read(archives["busybox"]), tmp_path / "root")
    script = "echo ok; sleep 0; cat /etc/group; which sh wget nslookup sleep cat timeout"
    done = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": wr.PATH_ENV.removeprefix("PATH=")},
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "ok",
        "root:x:0:",
        "nobody:x:65534:",
        "/bin/sh",
        "/usr/bin/wget",
        "/usr/bin/nslookup",
        "/bin/sleep",
        "/bin/cat",
        "/usr/bin/timeout",
    ]


# ---- run by containerd ----------------------------------------------------


@dataclass
class Containerd:
    """A throwaway containerd (Debian's 1.6) and its ctr."""

    ctr_bin: Path
    runc: Path
    socket: Path
    base: Path

    def ctr(self, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.ctr_bin), "--address", str(self.socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run(self, *args: str) -> str:
        """ctr's output; its error fails the test."""
        done = self.ctr(*args)
        assert done.returncode == 0, f"ctr {' '.join(args)}: {done.stderr}"
        return done.stdout

    def start(self, *args: str) -> str:
        """`ctr run` under this containerd's own runc root (not the host's)."""
        return self.run(
            "run",
            "--runc-binary",
            str(self.runc),
            "--runc-root",
            str(self.base / "runc"),
            "--cgroup",
            "",
            *args,
        )

    def task_status(self, name: str) -> str | None:
        for line in self.run("task", "ls").splitlines():
            words = line.split()
            if words[:1] == [name]:
                return words[2]
        return None

    def remove(self, name: str) -> None:
        """A container and its task, whatever state they are in."""
        self.ctr("task", "kill", "-s", "SIGKILL", name)
        deadline = time.monotonic() + WAIT
        while self.task_status(name) == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        self.ctr("task", "delete", name)
        self.ctr("container", "delete", name)


def debian_tool(package: str) -> Path:
    """A Debian package's files, unpacked in the harness cache (not installed)."""
    (pkg,) = debian.resolve([debian.PackageSpec(package, "tool", ())])
    return debian.unpacked(pkg, cache_root())


def mounts_under(base: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if p.startswith(str(base))), reverse=True)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def as_a_system_daemon() -> None:
    """containerd as a node runs it: its tasks take the StopSignal (SIGQUIT), and
    it keeps the system's umask, not the harness's private one: nginx's
    workers (www-data) read the layers it unpacks."""
    as_from_a_terminal()
    os.umask(0o022)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    bin_dir = debian_tool("containerd") / "usr/bin"
    runc = debian_tool("runc") / "usr/sbin/runc"
    base = tmp_path_factory.mktemp("containerd")
    socket = base / "sock"
    config = base / "config.toml"
    config.write_text(
        'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{runc.parent}:{os.environ['PATH']}"}
    with (base / "containerd.log").open("wb") as log:
        daemon = subprocess.Popen(
            [str(bin_dir / "containerd"), "--config", str(config), "--root", str(base / "root"),
             "--state", str(base / "state"), "--address", str(socket)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=as_a_system_daemon,
        )  # fmt: skip
    tool = Containerd(bin_dir / "ctr", runc, socket, base)
    try:
        deadline = time.monotonic() + WAIT
        while subprocess.run(
            [str(tool.ctr_bin), "--address", str(socket), "version"], capture_output=True
        ).returncode:
            assert daemon.poll() is None, (base / "containerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "containerd never answered"
            time.sleep(0.2)
        yield tool
    finally:
        for pid in processes_mentioning(str(socket)):  # shims this containerd started
            if pid != daemon.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        for point in mounts_under(base):
            subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture(scope="module")
def imported(containerd: Containerd, archives) -> Containerd:
    for archive in archives.values():
        containerd.run("images", "import", str(archive))
    return containerd


def test_ctr_imports_the_archives_under_their_full_names(imported):
    names = set(imported.run("images", "ls", "-q").split())
    assert names == {wr.NGINX_REF, *wr.BUSYBOX_REFS}


def test_containerd_runs_busybox_latest_as_a_pod_helper_would(imported):
    name = f"wi-busybox-{os.getpid()}"
    try:
        out = imported.start(
            "--rm", "docker.io/library/busybox:latest", name,
            "sh", "-c", "echo ok; id -u; timeout 5 sleep 0",
        )  # fmt: skip
        assert out.split() == ["ok", "0"]
    finally:
        imported.remove(name)


def test_containerd_runs_nginx_from_its_image_config(imported, tmp_path):
    """No command given: the image's Cmd starts nginx; the page answers inside the
    container's own network namespace; `ctr task kill` sends the image's
    StopSignal (SIGQUIT), which nginx takes as a graceful stop."""
    name = f"wi-nginx-{os.getpid()}"
    log = tmp_path / "nginx.log"
    imported.start("-d", "--log-uri", f"file://{log}", wr.NGINX_REF, name)
    try:
        deadline = time.monotonic() + WAIT
        (pid,) = [
            int(line.split()[1])
            for line in imported.run("task", "ls").splitlines()
            if line.split()[:1] == [name]
        ]
        probe = (
            "import urllib.request, time, sys\n"
            f"deadline = time.monotonic() + {WAIT}\n"
            "while True:\n"
            "    try:\n"
            "        r = urllib.request.urlopen('http://127.0.0.1:80/', timeout=5)\n"
            "        sys.stdout.write(f'{r.status} ' + r.read().decode()); break\n"
            "    except OSError:\n"
            "        if time.monotonic() > deadline: raise\n"
            "        time.sleep(0.2)\n"
        )
        answer = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", probe],
            capture_output=True, text=True, timeout=WAIT + 10,
        )  # fmt: skip
        assert answer.stdout.startswith("200 ") and "Welcome to nginx!" in answer.stdout, (
            answer.stderr
        )
        workers = children_once_all_are(33, pid, deadline)
        assert uid_of(pid) == 0 and workers and all(uid_of(c) == 33 for c in workers)
        imported.run("task", "kill", name)  # no --signal: the image's StopSignal
        while imported.task_status(name) != "STOPPED":
            assert time.monotonic() < deadline, "nginx did not stop on its StopSignal"
            time.sleep(0.2)
        text = log.read_text()
        assert "signal 3 (SIGQUIT) received" in text and "gracefully shutting down" in text
        assert '"GET / HTTP/1.1" 200' in text
    finally:
        imported.remove(name)
