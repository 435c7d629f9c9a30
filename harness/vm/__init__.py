"""One machine: QEMU command line, console, test shell, ports, accelerator,
stage timeline. Reads built images (harness.artefact), never builds them."""
