"""The `kubesolo-harness` commands (docs/architecture.md "Map"): each builds,
boots and reports through the packages below it; nothing imports them."""
