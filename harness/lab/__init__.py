"""Hardware in the loop through labgrid: a board (real, or a QEMU process wired
like one) behind the same target interface as a QEMU `Machine`
(docs/architecture.md "Hardware in the loop")."""
