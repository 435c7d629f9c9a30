"""What KubeSolo is, as the suites rely on it (docs/kubesolo.md): its ports,
system Deployments, storage class, networks and containerd. Guest paths come
from harness.guest; nothing else in the harness or the suites spells these."""

from __future__ import annotations

from harness import guest

# docs/kubesolo.md "Files and ports"
API_PORT = 6443
ADMIN_CONTEXT = "kubernetes-admin@kubesolo"
CONSOLE_START = "starting kubesolo"  # KubeSolo's first log line of a start

# docs/kubesolo.md "Health": the kubelet's plain-HTTP health endpoint
KUBELET_HEALTHZ = "http://127.0.0.1:10248/healthz"

# docs/kubesolo.md "Runtime": KubeSolo's own containerd, and its namespace
CONTAINERD_SOCKETS = (
    f"{guest.KUBESOLO_PATH}/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
)
CONTAINERD_NAMESPACE = "k8s.io"

# docs/kubesolo.md "Networking"
CLUSTER_DNS_IP = "10.43.0.10"
POD_NETWORK = "10.42.0.0/16"
SERVICE_NETWORK = "10.43.0.0/16"

# docs/kubesolo.md "Storage"
LOCAL_PATH_ROOT = f"{guest.KUBESOLO_PATH}/local-path-storage"
LOCAL_PATH_STORAGE_CLASS = "local-path"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# local-path's helper pod runs plain `busybox` (IfNotPresent): it must exist on the node.
LOCAL_PATH_HELPER_IMAGE = "docker.io/library/busybox:latest"

# The Deployments KubeSolo itself rolls out, in the order it deploys them.
SYSTEM_ROLLOUTS = (
    ("kube-system", "coredns"),
    ("local-path-storage", "local-path-provisioner"),
)
# Kubernetes' node heartbeats: one Lease per node, renewed by the kubelet every 10 s.
NODE_LEASE_NAMESPACE = "kube-node-lease"
# The node controller's taints on a node whose heartbeats stopped (a paused or restored VM).
NODE_DOWN_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
