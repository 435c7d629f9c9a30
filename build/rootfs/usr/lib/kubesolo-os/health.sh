# shellcheck shell=sh
# Health checks of a running node (spec "Shared libraries"): each returns 0
# when the component answers. For the emergency shell and the test suites.

KUBESOLO_PATH=${KUBESOLO_PATH:-/var/lib/kubesolo}

check_containerd() { [ -S "$KUBESOLO_PATH/containerd/containerd.sock" ] || [ -S /run/containerd/containerd.sock ]; }

# The API server answers anonymous GET /version (kubesolo-facts.md "Files and ports").
check_apiserver() { wget -q -O /dev/null --no-check-certificate https://127.0.0.1:6443/version 2>/dev/null; }

check_kubelet() { wget -q -O /dev/null http://127.0.0.1:10248/healthz 2>/dev/null; }

check_node_ready() { check_containerd && check_apiserver && check_kubelet; }
