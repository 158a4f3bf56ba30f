"""`retainer sync` (being built)."""
