"""KubeSolo OS test harness: image builder, QEMU machines and a pytest plugin."""
