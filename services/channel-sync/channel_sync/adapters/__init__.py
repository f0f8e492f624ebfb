"""Channel-sync's persistence: its own tables (prefix `channel_sync_`) and Alembic
migrations with their own version table, so it shares a database with the recalculator."""
