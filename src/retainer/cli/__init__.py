"""The `retainer` command line."""
