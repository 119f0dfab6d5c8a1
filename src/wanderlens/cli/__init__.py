"""The `wanderlens` command: one sub-command per stage, and `demo` for the whole job."""
