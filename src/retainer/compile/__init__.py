"""Compile a rulebook into a plan of sqlglot expression trees."""
