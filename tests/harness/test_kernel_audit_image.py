"""`kubesolo-harness kernel-audit` on the image this run built
(docs/architecture.md "Developer tools"): nothing required is missing, and
every module the audit names is a real module of the image's kernel package."""

from __future__ import annotations

import json

from harness.build import kmod
from harness.build.kernel_audit import OPTIONS, image_kernel_config
from harness.commands.cli import main


def test_our_image_has_every_required_option(kubesolo_image, tmp_path, capsys):
    report = tmp_path / "audit.json"
    assert main(["kernel-audit", str(kubesolo_image.path), "--json", str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"kernel {kubesolo_image.manifest['kernel_version']} (linux-image-")
    assert out[-1].startswith("kernel-audit: all 45 required options present")
    findings = json.loads(report.read_text())["options"]
    assert len(findings) == len(OPTIONS)
    modular = [f for f in findings if f["state"] == "m"]
    assert modular and all(f["in_image"] for f in modular), [
        f["option"] for f in modular if not f["in_image"]
    ]


def test_every_named_module_exists_in_the_kernel_package(kubesolo_image):
    config, _, _ = image_kernel_config(kubesolo_image)
    moddir = config.parent.parent / "lib/modules" / kubesolo_image.manifest["kernel_version"]
    available = {name.replace("-", "_") for name in kmod.scan_modules(moddir)}
    named = {o.module for o in OPTIONS if o.module}
    assert named - available == set()
