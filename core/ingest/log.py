"""Ingest's log: what happened to each file, in a rotating file in the lab folder.

The catalog's events say what became of a file; this log also says when
ingest paused, resumed or failed, so a lab can answer "what happened to this
file at 14:02" from one place. ``LAB/logs/ingest.log``, 5 MB a file, the last
five kept.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from core.lab import Lab

LOGGER_NAME = "xlab.ingest"
MAX_BYTES = 5_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(message)s"

logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())  # with no lab log set up, ingest stays silent (no stderr noise)


def for_lab(root: Path) -> logging.LoggerAdapter:
    """The ingest logger for one lab: its records go to that lab's log only."""
    return logging.LoggerAdapter(logger, {"lab": str(root)})


class _LabFilter(logging.Filter):
    def __init__(self, root: str):
        super().__init__()
        self.root = root

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "lab", None) == self.root


def ingest_logging(lab: Lab) -> Path:
    """Send this lab's ingest records to ``LAB/logs/ingest.log``; returns its path.

    Call once where ingest starts (CLI, demo, window); calling again for the
    same lab adds nothing. Several labs in one process each get their own file.
    """
    root = str(lab.paths.root)
    path = lab.paths.root / "logs" / "ingest.log"
    for handler in logger.handlers:
        if getattr(handler, "xlab_lab", None) == root:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                                  errors="backslashreplace", delay=True)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_LabFilter(root))
    handler.xlab_lab = root  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path


def stop_ingest_logging(lab: Lab) -> None:
    """Close this lab's log file (a lab closed for good, or a test done with it)."""
    for handler in list(logger.handlers):
        if getattr(handler, "xlab_lab", None) == str(lab.paths.root):
            logger.removeHandler(handler)
            handler.close()
