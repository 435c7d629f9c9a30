"""Boot time as numbers (docs/architecture.md "Boot-time gate"): the stage
timeline read from the console, the guest's own clock, the gate's baseline
and verdict, and the charts and pages that show them. Pure: no machine."""
