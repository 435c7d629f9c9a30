"""The workload-image recipes agree with themselves: the user nginx.conf names
exists, the command and the config do not both set `daemon`, the port the
server listens on is the one the image exposes, references are full."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.build import workload_images as wi
from harness.build import workload_recipes as wr
from harness.errors import UserError


def text(recipe: wr.Recipe, path: str) -> str:
    return dict(recipe.files)[path]


def directives(conf: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", conf, re.M)


def test_references_are_full_and_busybox_has_both_tags():
    assert wr.REFS == {
        "nginx": ("docker.io/library/nginx:stable",),
        "busybox": ("docker.io/library/busybox:stable", "docker.io/library/busybox:latest"),
    }
    assert wr.NGINX_REF in wr.REFS["nginx"] and wr.BUSYBOX_REF in wr.BUSYBOX_REFS


def test_nginx_workers_run_as_a_user_and_group_the_image_has():
    conf = text(wr.NGINX, "etc/nginx/nginx.conf")
    (user,) = directives(conf, "user")
    passwd = {line.split(":")[0]: line.split(":") for line in text(wr.NGINX, "etc/passwd").split()}
    groups = {line.split(":")[0] for line in text(wr.NGINX, "etc/group").split()}
    assert user == "www-data" and user in passwd and user in groups
    uid = int(passwd[user][2])
    temp_dirs = [d for d in wr.NGINX.dirs if d[0].startswith("var/lib/nginx/")]
    assert temp_dirs and all(owner == uid for _path, _mode, owner in temp_dirs)


def test_nginx_runs_in_the_foreground_once_and_logs_to_the_container():
    conf = text(wr.NGINX, "etc/nginx/nginx.conf")
    assert wr.NGINX.config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert directives(conf, "daemon") == []  # nginx refuses a directive given twice
    assert directives(conf, "pid") == ["/run/nginx.pid"]
    assert directives(conf, "error_log") == ["stderr notice"]
    assert directives(conf, "access_log") == ["/dev/stdout"]


def test_nginx_listens_where_the_image_says_and_stops_gracefully():
    conf = text(wr.NGINX, "etc/nginx/nginx.conf")
    ports = {f"{p}/tcp" for p in directives(conf, "listen")}
    assert ports == set(wr.NGINX.config["ExposedPorts"]) == {"80/tcp"}
    assert wr.NGINX.config["StopSignal"] == "SIGQUIT"


def test_both_images_run_as_root_with_a_path():
    for recipe in wr.RECIPES.values():
        assert recipe.config["User"] == "0:0"
        assert recipe.config["Env"] == [wr.PATH_ENV]
        assert text(recipe, "etc/passwd").startswith("root:x:0:0:")
    assert wr.BUSYBOX.config["Cmd"] == ["sh"]


def test_source_date_epoch_sets_the_time(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert wi.source_date_epoch() == 0
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert wi.source_date_epoch() == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UserError, match="SOURCE_DATE_EPOCH"):
        wi.source_date_epoch()


def test_a_glob_that_takes_nothing_is_an_error(tmp_path: Path):
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/nginx").write_bytes(b"x")
    assert wi.take(tmp_path, ("usr/sbin/*",)) == ["usr/sbin/nginx"]
    with pytest.raises(UserError, match=r"no file matching etc/nginx/mime\.types"):
        wi.take(tmp_path, ("usr/sbin/nginx", "etc/nginx/mime.types"))
