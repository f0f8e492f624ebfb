"""Structured logs: one JSON object per line on standard error, for the runtimes (the core
never logs). `BACKORDERS_LOG_LEVEL` sets the level (default: warning, so that a command's
own output stays readable; `info` adds one line per committed batch)."""

from __future__ import annotations

import logging
import sys

import structlog
from pydantic_settings import BaseSettings, SettingsConfigDict


DEFAULT_LEVEL = "warning"


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_", env_ignore_empty=True)

    log_level: str = DEFAULT_LEVEL  # BACKORDERS_LOG_LEVEL


def configure(level: str | None = None) -> None:
    """Set the level: `level`, else `BACKORDERS_LOG_LEVEL` (what a command does when it starts)."""
    name = (level or LogSettings().log_level).upper()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, name, logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str):
    if not structlog.is_configured():
        # Library use (tests, benchmarks) and module import: the CLI's quiet default,
        # without reading the environment (configuration is read when a command runs).
        configure(DEFAULT_LEVEL)
    return structlog.get_logger(name)
