"""The fixture manifests: substitution, loading, and the rules every manifest follows."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kube_fakes import SAMPLE_VALUES

from harness.k8s.errors import ManifestError
from harness.k8s.manifests import MANIFEST_DIR, load_manifest, substitute

MANIFESTS = sorted(p.stem for p in MANIFEST_DIR.glob("*.yaml"))


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    spec = spec.get("template", {}).get("spec", spec)
    return list(spec.get("containers", []))


class TestManifests:
    def test_substitution_leaves_shell_variables_alone(self) -> None:
        text = 'i=$((i + 1)); echo "$i ${i} ${lower}" ${NAME}'
        assert substitute(text, {"NAME": "x"}) == 'i=$((i + 1)); echo "$i ${i} ${lower}" x'

    def test_missing_values_are_all_named(self) -> None:
        with pytest.raises(ManifestError, match="A_B, NAME"):
            substitute("${NAME} ${A_B} ${NAME}", {})

    def test_unknown_manifest(self, tmp_path: Path) -> None:
        with pytest.raises(ManifestError, match="no manifest"):
            load_manifest("nope", {}, directory=tmp_path)

    def test_empty_documents_are_dropped(self, tmp_path: Path) -> None:
        (tmp_path / "m.yaml").write_text("---\nkind: A\n---\n---\nkind: B\n")
        assert [d["kind"] for d in load_manifest("m", directory=tmp_path)] == ["A", "B"]

    def test_the_suites_manifests_exist(self) -> None:
        expected = {
            "nginx",
            "nginx-nodeport",
            "http-probe",
            "dns-probe",
            "pvc-writer",
            "pvc-reader",
            "netpol",
        }
        assert expected <= set(MANIFESTS)

    @pytest.mark.parametrize("name", MANIFESTS)
    def test_manifest_loads_into_named_objects(self, name: str) -> None:
        docs = load_manifest(name, SAMPLE_VALUES)
        assert docs
        for doc in docs:
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
            assert "namespace" not in doc["metadata"], "tests choose the namespace"

    @pytest.mark.parametrize("name", MANIFESTS)
    def test_images_are_the_chosen_ones_and_never_pulled_needlessly(self, name: str) -> None:
        for doc in load_manifest(name, SAMPLE_VALUES):
            for container in containers(doc):
                assert container["image"].startswith("sentinel/")
                assert container["imagePullPolicy"] == "IfNotPresent"

    @pytest.mark.parametrize("name", ["http-probe", "dns-probe"])
    def test_probe_scripts_are_valid_sh(self, name: str) -> None:
        (doc,) = load_manifest(name, SAMPLE_VALUES)
        (container,) = containers(doc)
        script = container["args"][0]
        subprocess.run(["sh", "-n", "-c", script], check=True)

    def test_node_port_is_an_integer(self) -> None:
        (service,) = load_manifest("nginx-nodeport", SAMPLE_VALUES)
        assert service["spec"]["ports"][0]["nodePort"] == 30080

    def test_policies_select_nginx_and_the_labelled_client(self) -> None:
        nginx_labels = load_manifest("nginx", SAMPLE_VALUES)[0]["spec"]["template"]
        probe = load_manifest("http-probe", SAMPLE_VALUES)[0]
        deny, allow = load_manifest("netpol", SAMPLE_VALUES)
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        assert allow["spec"]["podSelector"]["matchLabels"].items() <= (
            nginx_labels["metadata"]["labels"].items()
        )
        source = allow["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        assert source == {"access": "allowed"} == {"access": probe["metadata"]["labels"]["access"]}

    def test_pvc_uses_the_default_class(self) -> None:
        pvc, job = load_manifest("pvc-writer", SAMPLE_VALUES)
        assert "storageClassName" not in pvc["spec"]
        assert "0123abcd" in " ".join(containers(job)[0]["command"])
