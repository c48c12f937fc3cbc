"""The `promedical` command line: one entry point, one sub-command group per stage."""
