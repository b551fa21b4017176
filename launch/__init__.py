"""The `vopd` command, configs, the driver loop, reports and the demo's tiny-model assets."""
