"""`retainer act` and `retainer decisions` (being built)."""
