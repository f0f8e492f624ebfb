"""`backorders serve`: the recalculator's state over HTTP, read-only (docs/api.md)."""
