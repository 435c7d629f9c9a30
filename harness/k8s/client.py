"""From KubeSolo's admin kubeconfig to an API client (docs/kubesolo.md
"Files and ports"): only this boot's file, the server rewritten to the host's
forward, the certificate context chosen, and one timeout for every request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from harness.k8s.errors import KubeconfigError
from harness.k8s.kubesolo import ADMIN_CONTEXT

# Every API call passes `_request_timeout=REQUEST_TIMEOUT`: without it a call to a node that
# stopped answering hangs for ever. Sized for an API server under TCG.
REQUEST_TIMEOUT = 30.0


def parse_stamps(output: str) -> tuple[int, int] | None:
    """(kubeconfig mtime, boot time) from `kubeconfig_stamps_command`, None if unreadable."""
    words = output.split()
    if len(words) != 2 or not all(w.isdigit() for w in words):
        return None
    return int(words[0]), int(words[1])


def kubeconfig_of_this_boot(mtime: int, boot_time: int) -> bool:
    """Written since this boot started. KubeSolo rewrites the admin kubeconfig at every start
    once its API answers; the previous boot's copy may hold a CA the new start replaced."""
    return mtime >= boot_time


def rewrite_kubeconfig(text: str, port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """Point every cluster at the forwarded port, keeping CA and client certificates.

    Newer KubeSolo builds may write the node IP as server; its certificate is valid for that
    name, so TLS keeps verifying against it through `tls-server-name` (SNI + hostname check).
    """
    config = yaml.safe_load(text)
    if not isinstance(config, dict) or not config.get("clusters"):
        raise KubeconfigError("admin kubeconfig has no clusters: is KubeSolo's API up?")
    for entry in config["clusters"]:
        cluster = entry.get("cluster") or {}
        if "server" not in cluster:
            raise KubeconfigError(f"cluster {entry.get('name')!r} in kubeconfig has no server")
        original = urlsplit(cluster["server"]).hostname
        cluster["server"] = f"https://{host}:{port}"
        cluster.pop("insecure-skip-tls-verify", None)
        if original and original != host:
            cluster.setdefault("tls-server-name", original)
    config["current-context"] = select_context(config)
    return config


def select_context(config: Mapping[str, Any]) -> str:
    """KubeSolo's certificate-based admin context; the token context is a fallback only."""
    names = [c.get("name") for c in config.get("contexts") or []]
    if ADMIN_CONTEXT in names:
        return ADMIN_CONTEXT
    current = config.get("current-context")
    if not current:
        raise KubeconfigError("admin kubeconfig has no usable context")
    return str(current)


def api_client_from_kubeconfig(config: Mapping[str, Any]) -> Any:
    """A `kubernetes.client.ApiClient` for one rewritten kubeconfig (not the global one).

    The server is a 127.0.0.1 forward that no proxy can reach, so HTTPS_PROXY & co. of the
    host are ignored (recent clients route through them unless NO_PROXY names 127.0.0.1).
    """
    configuration = k8s.Configuration()
    configuration.proxy = None  # set explicitly: the environment's proxy is not consulted
    k8s_config.load_kube_config_from_dict(
        dict(config),
        context=config["current-context"],
        client_configuration=configuration,
        persist_config=False,
    )
    return k8s.ApiClient(configuration)
