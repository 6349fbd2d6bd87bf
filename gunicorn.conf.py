"""gunicorn settings for the web process: `gunicorn config.wsgi` (this file is read from the
working directory). Every value can be set from the environment; see README, "Running in
production". https://docs.gunicorn.org/en/stable/settings.html
"""

import multiprocessing
import os

from config.logging import logging_config

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# The views are short database reads and writes (enrichment runs in Celery), except the
# lead page's run status: a long poll that waits up to RUN_STATUS_WAIT_SECONDS for the run to
# end. Threads (gunicorn's gthread worker whenever threads > 1) let a waiting page hold a
# thread, not a whole process: workers x threads requests at once, each with its own
# database connection (CONN_MAX_AGE keeps them open; mind PostgreSQL's max_connections).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Under the load balancer's idle timeout, so a slow request fails here with a log line.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# A worker is replaced after this many requests (plus jitter), so a slow leak cannot grow.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# The proxy in front sets X-Forwarded-Proto; trust it only from where the proxy runs.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Load the app once in the master: workers fork with it imported, and start fast.
preload_app = True

# gunicorn's own logs go through the same JSON formatter and redaction as the app's, so an
# access line never carries an address or a key from a query string; the request id is
# the one RequestIdMiddleware echoes.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s agent="%(a)s"'
_logging = logging_config(
    fmt=os.environ.get("LOG_FORMAT", "json"), level=os.environ.get("LOG_LEVEL", "INFO")
)
_logging["loggers"].update(
    {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    }
)
logconfig_dict = _logging
