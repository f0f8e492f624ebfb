"""The composition root: the `backorders` command, the only place that knows all three
services (recalculator, notifier, channel-sync) and wires them together — their commands
under one parser, their workers under `backorders worker`, the embedded demo (`run`) that
hands the recalculator's published events to the downstream services. Configuration is
read here, when a command runs (docs/architecture.md)."""
