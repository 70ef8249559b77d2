"""The `polyoms` command line."""
