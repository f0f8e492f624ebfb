"""Backorder notifications by email (built on the recalculator's BackorderChanged)."""
