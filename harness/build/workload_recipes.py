"""What the workload images hold (harness.build.workload_images builds
them): nginx and busybox as their official images run, from Debian 12
packages, as data."""

from __future__ import annotations

from dataclasses import dataclass, field

# The references the archives carry (containerd names the images so).
NGINX_REF = "docker.io/library/nginx:stable"
BUSYBOX_REFS = ("docker.io/library/busybox:stable", "docker.io/library/busybox:latest")
BUSYBOX_REF = BUSYBOX_REFS[0]

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOT_USER = "0:0"  # numeric: the runtime needs no passwd lookup, runAsNonRoot can check it
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"


@dataclass(frozen=True)
class Recipe:
    """An image: Debian packages and the files taken from them (their shared
    libraries follow), files written here, directories, run-time config."""

    name: str  # the archive is <name>.tar
    refs: tuple[str, ...]
    packages: tuple[tuple[str, tuple[str, ...]], ...]  # (package, globs of files taken)
    config: dict = field(hash=False)  # the OCI config's `config`: Cmd, Env, ...
    files: tuple[tuple[str, str], ...] = ()  # (path, text)
    dirs: tuple[tuple[str, int, int], ...] = ()  # (path, mode, owner uid = gid)
    applets_of: str | None = None  # a busybox taken above: add its applet links

    def as_input(self) -> dict:
        return {
            "name": self.name,
            "refs": self.refs,
            "packages": self.packages,
            "config": self.config,
            "files": self.files,
            "dirs": self.dirs,
            "applets_of": self.applets_of,
        }


# nginx as the official image runs it: the master as root, workers as an
# unprivileged user (Debian's www-data; the official image calls it nginx),
# in the foreground through the image's command, logs on stdout and stderr,
# temporary files under /var/lib/nginx (Debian's compiled-in paths).
NGINX_CONF = """\
# nginx:stable of the KubeSolo OS harness, from Debian's nginx package.
# The image's command adds `-g "daemon off;"` (as the official image does), so
# `daemon` must not be set here.
user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log stderr notice;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html;
        }
    }
}
"""

NGINX = Recipe(
    name="nginx",
    refs=(NGINX_REF,),
    packages=(
        ("nginx", ("usr/sbin/nginx",)),
        ("nginx-common", ("etc/nginx/mime.types", "usr/share/nginx/html/index.html")),
    ),
    config={
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": [PATH_ENV],
        "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGQUIT",  # nginx's graceful stop, as in the official image
        "User": ROOT_USER,
        "WorkingDir": "/",
    },
    files=(
        ("etc/nginx/nginx.conf", NGINX_CONF),
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nwww-data:x:33:\n"),
        ("etc/nsswitch.conf", NSSWITCH),
    ),
    dirs=(
        ("var/lib/nginx", 0o755, 0),
        *((f"var/lib/nginx/{d}", 0o700, 33) for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi")),
        ("var/log/nginx", 0o755, 0),
        ("var/www", 0o755, 0),
    ),
)

BUSYBOX = Recipe(
    name="busybox",
    refs=BUSYBOX_REFS,
    packages=(("busybox-static", ("bin/busybox",)),),
    config={"Cmd": ["sh"], "Env": [PATH_ENV], "User": ROOT_USER, "WorkingDir": "/"},
    files=(
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
        ("etc/nsswitch.conf", NSSWITCH),
    ),
    applets_of="bin/busybox",
)

RECIPES = {r.name: r for r in (NGINX, BUSYBOX)}
REFS = {r.name: r.refs for r in RECIPES.values()}
