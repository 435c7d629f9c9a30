"""Kubernetes on a KubeSolo node: kubeconfig, predicates, waits, image preloading,
failure dumps and the node's life cycle, on any machine with a test shell
(harness.k8s.host.KubeHost)."""
