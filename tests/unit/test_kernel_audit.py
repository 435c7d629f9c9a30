"""The kernel-configuration audit's rules (docs/architecture.md "Developer
tools"): states, the module check, the verdict and the command's exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.artefact import Image
from harness.build import kernel_audit
from harness.build.kernel_audit import OPTIONS, Option, audit, parse_config, verdict
from harness.commands.cli import main
from harness.errors import UserError


def full_config() -> str:
    """A configuration that sets every audited option as its table expects."""
    return "\n".join(f"CONFIG_{o.name}={'m' if o.module else 'y'}" for o in OPTIONS) + "\n"


def test_parse_config_reads_values_and_unset_lines() -> None:
    text = 'CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x y"\n# comment\n'
    assert parse_config(text) == {"A": "y", "B": "m", "C": "n", "D": '"x y"'}


def test_states_and_the_module_check() -> None:
    options = (
        Option("Y", True, None, ""),
        Option("M", True, "mod_a", ""),
        Option("GONE", True, "mod_b", ""),
        Option("N", True, None, ""),
        Option("ABSENT", False, None, ""),
    )
    config = {"Y": "y", "M": "m", "GONE": "m", "N": "n"}
    found = {f.option: f for f in audit(config, {"mod-a"}, options)}
    assert [found[k].state for k in found] == ["y", "m", "m", "missing", "missing"]
    assert found["CONFIG_M"].in_image is True  # '-' and '_' are one name
    assert found["CONFIG_GONE"].in_image is False
    assert [k for k, f in found.items() if not f.ok] == ["CONFIG_GONE", "CONFIG_N", "CONFIG_ABSENT"]
    status, line = verdict(list(found.values()))
    assert status == 1
    assert line == "kernel-audit: 2 of 4 required options missing: CONFIG_GONE, CONFIG_N"


def test_unknown_modules_trust_the_config() -> None:
    (finding,) = audit({"M": "m"}, None, (Option("M", True, "m", ""),))
    assert finding.in_image is None and finding.ok


def test_every_option_appears_once_and_modules_are_named() -> None:
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    assert all(o.why for o in OPTIONS)
    assert {"OVERLAY_FS", "VETH", "BRIDGE", "BRIDGE_NETFILTER", "MEMCG", "CGROUP_BPF"} <= {
        o.name for o in OPTIONS if o.required
    }


def test_a_reduced_config_exits_1_naming_what_is_missing(tmp_path: Path, capsys) -> None:
    removed = ("OVERLAY_FS", "BRIDGE_NETFILTER", "MEMCG")
    lines = [line for line in full_config().splitlines() if line.split("=")[0][7:] not in removed]
    config = tmp_path / "config"
    config.write_text("\n".join(lines) + "\n# CONFIG_MEMCG is not set\n")
    report = tmp_path / "audit.json"
    assert main(["kernel-audit", "--config", str(config), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        "kernel-audit: 3 of 45 required options missing: "
        "CONFIG_MEMCG, CONFIG_OVERLAY_FS, CONFIG_BRIDGE_NETFILTER"
    )
    assert "!  CONFIG_OVERLAY_FS" in out
    data = json.loads(report.read_text())
    assert data["ok"] is False
    assert sorted(o["option"] for o in data["options"] if o["state"] == "missing") == [
        "CONFIG_BRIDGE_NETFILTER", "CONFIG_MEMCG", "CONFIG_OVERLAY_FS",
    ]  # fmt: skip


def test_the_full_config_exits_0(tmp_path: Path, capsys) -> None:
    config = tmp_path / "config"
    config.write_text(full_config())
    assert main(["kernel-audit", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "kernel-audit: all 45 required options present; 0 optional missing"
    )


def test_a_missing_config_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["kernel-audit", "--config", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.endswith("/nope: no such kernel configuration file\n")
    assert err.startswith("kubesolo-harness kernel-audit: error: ") and err.count("\n") == 1


def test_an_image_without_a_kernel_package_is_one_line(tmp_path: Path) -> None:
    image = Image(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"packages": []}))
    with pytest.raises(UserError, match="names no kernel package"):
        kernel_audit.image_kernel_config(image)
