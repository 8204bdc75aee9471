"""Spyne's loggers write whole request documents (debug dumps, ``%r in string %r`` on malformed XML,
faults with their input): keep their records, drop their content.

A logger's filter only sees records made on that logger, so the filter goes on every ``spyne`` logger that
exists once Spyne is imported (they are made at module import), and the tree is set to WARNING.
"""
from __future__ import annotations

import logging


class WithholdContent(logging.Filter):
    """Replaces a record's text and traceback with its logger, level and exception type."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info and record.exc_info[1] is not None else None
        kind = f" ({type(error).__name__})" if error is not None else ""
        record.msg = f"spyne reported a problem{kind}; its text is withheld (it may hold request content)"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


_FILTER = WithholdContent()


def silence_spyne() -> None:
    """Idempotent; called when the SOAP app is built (never at import)."""
    logging.getLogger("spyne").setLevel(logging.WARNING)
    names = ["spyne", *(name for name in logging.Logger.manager.loggerDict if name.startswith("spyne."))]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
