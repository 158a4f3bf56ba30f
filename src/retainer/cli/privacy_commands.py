"""`retainer forget` (being built)."""
