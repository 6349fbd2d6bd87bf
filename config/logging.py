"""Structured logs: one JSON object a line, carrying the request id and the run id, with
anything that looks like a secret or an email address masked before it is written.

Settings wire it up (`LOGGING` in config/settings/); the web process sets the request id
(config.middleware.RequestIdMiddleware), the worker sets the run id (enrichment.tasks)
through `log_context`. Nothing here imports Django, so gunicorn's config can use it too.
"""

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
run_id_var: ContextVar[str] = ContextVar("run_id", default="")

_CONTEXT_VARS = {"request_id": request_id_var, "run_id": run_id_var}

# Environment variables whose values must never reach a log line, whatever the message.
SECRET_SETTINGS = (
    "DJANGO_SECRET_KEY",
    "SANDBOX_API_KEY",
    "HUNTER_API_KEY",
    "PDL_API_KEY",
    "APOLLO_API_KEY",
    "NETROWS_API_KEY",
)
MASK = "[redacted]"

_PATTERNS = [
    # Authorization headers and tokens: "Bearer abc…", "Token abc…", "Basic abc…".
    (re.compile(r"\b(Bearer|Token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\1 {MASK}"),
    # key=value and key: value pairs, as in query strings, headers and reprs of dicts.
    (
        re.compile(
            r"""(?P<key>["']?[\w-]*(?:api[_-]?key|apikey|token|secret|password|passwd|"""
            r"""authorization|x-api-key)["']?\s*[=:]\s*["']?)"""
            # "Authorization: Bearer x": the token pattern above already masked x.
            r"""(?!(?:Bearer|Token|Basic)\s)(?P<value>[^\s"'&,;}]+)""",
            re.IGNORECASE,
        ),
        rf"\g<key>{MASK}",
    ),
    # Email addresses keep their domain (useful to debug a provider) and lose the person.
    (
        re.compile(r"[A-Za-z0-9._%+-]+@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"),
        r"***@\g<domain>",
    ),
]


def redact(text: str) -> str:
    """Return the text with secrets, tokens and email addresses masked."""
    for name in SECRET_SETTINGS:
        value = os.environ.get(name, "")
        # Short values would mask innocent words; real keys are long.
        if len(value) >= 8:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Put request_id / run_id on every record logged inside the block."""
    tokens = [
        (_CONTEXT_VARS[name], _CONTEXT_VARS[name].set(str(value))) for name, value in values.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Copy the request and run ids of the current context onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT_VARS.items():
            if not getattr(record, name, ""):
                setattr(record, name, var.get())
        # gunicorn's access line is written after the request left Django's context; its
        # atoms hold the X-Request-ID the middleware set on the response.
        if not record.request_id and isinstance(record.args, dict):
            echoed = record.args.get("{x-request-id}o", "")
            record.request_id = "" if echoed == "-" else str(echoed)
        return True


class RedactFilter(logging.Filter):
    """Mask secrets and email addresses in the message and in the traceback.

    On the handler, so records from every library (requests, celery, django) pass it.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, run_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
            "run_id": getattr(record, "run_id", "") or run_id_var.get(),
            "process": record.process,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s run=%(run_id)s] %(message)s"


def logging_config(*, fmt: str, level: str) -> dict:
    """Return the LOGGING dict: `fmt` is "json" or "plain"."""
    if fmt not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be json or plain, not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "config.logging.ContextFilter"},
            "redact": {"()": "config.logging.RedactFilter"},
        },
        "formatters": {
            "json": {"()": "config.logging.JsonFormatter"},
            "plain": {"format": PLAIN_FORMAT},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"urllib3": {"level": "WARNING"}},
    }
