"""The notifier's SQL state (SQLAlchemy Core, SQLite and PostgreSQL) and its migrations."""
