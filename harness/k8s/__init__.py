"""Kubernetes on a KubeSolo node: kubeconfig, predicates, waits, image preloading,
failure dumps and the node's life cycle, on top of a harness.vm Machine."""
