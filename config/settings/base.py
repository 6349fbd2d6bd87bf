"""Settings for every environment, read from the environment once.

With DATABASE_URL and REDIS_URL unset Leadsmith runs embedded: SQLite in WAL mode and a
Celery broker on the local filesystem, so `make demo` needs no server. With them set it
uses PostgreSQL and Redis (broker, cache and, later, the shared rate limiter).
"""

from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A development-only default; production.py insists on DJANGO_SECRET_KEY.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-only-for-local-use")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_celery_beat",
    "leads",
    "providers",
    "enrichment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", default=str(VAR_DIR / "leadsmith.sqlite3")),
            "OPTIONS": {
                # WAL lets the web process read while a worker writes; IMMEDIATE takes the
                # write lock at BEGIN so concurrent writers wait (timeout) instead of failing.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker and cache ----------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # An unacknowledged message comes back only after this; it must stay above the
        # hard time limit or a slow task would be delivered twice while still running.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    }
else:
    CELERY_BROKER_URL = "filesystem://"
    # The embedded broker and database live in files; their folders must exist first.
    for _folder in ("queue", "control"):
        (CELERY_BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Runs are rows: their state lives in EnrichmentRun, so Celery keeps no results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_TASK_DEFAULT_QUEUE = "enrichment"
# A worker started without -Q consumes every queue listed here.
CELERY_TASK_QUEUES = [Queue("enrichment"), Queue("maintenance")]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "enrichment.runs_sweep": {
        "task": "enrichment.runs_sweep",
        "schedule": env.float("ENRICHMENT_SWEEP_EVERY_SECONDS", default=30.0),
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Enrichment -----------------------------------------------------------------------
ENRICH_ON_CREATE = env.bool("ENRICH_ON_CREATE", default=True)
# Default region for phone numbers written without a country code.
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="US")
ENRICHMENT_FRESHNESS_DAYS = env.int("ENRICHMENT_FRESHNESS_DAYS", default=90)
# Runs sent together travel in messages of this many, so providers with a bulk endpoint
# answer them in one request (PDL takes 100, Apollo 10). A batch must finish within the
# task time limits above: with slow vendors, raise those or lower this.
ENRICHMENT_BATCH_SIZE = env.int("ENRICHMENT_BATCH_SIZE", default=20)
# Claims after which a run that keeps losing its worker or failing transiently is dead.
ENRICHMENT_MAX_ATTEMPTS = env.int("ENRICHMENT_MAX_ATTEMPTS", default=3)
# A run RUNNING for longer than the hard time limit plus this lost its worker.
ENRICHMENT_RUN_STALE_GRACE_SECONDS = env.int("ENRICHMENT_RUN_STALE_GRACE_SECONDS", default=30)
# A QUEUED run whose message went out this long ago and was never claimed is sent again.
ENRICHMENT_REQUEUE_AFTER_SECONDS = env.int("ENRICHMENT_REQUEUE_AFTER_SECONDS", default=600)
# Misses are cached this long; hits until the field's freshness threshold.
PROVIDER_MISS_TTL_DAYS = env.int("PROVIDER_MISS_TTL_DAYS", default=30)

# --- Providers ------------------------------------------------------------------------
# A provider is on only when it is configured: the sandbox by its URL, a vendor by its key.
SANDBOX_BASE_URL = env("SANDBOX_BASE_URL", default="")
SANDBOX_API_KEY = env("SANDBOX_API_KEY", default="")
# https://hunter.io/api-documentation/v2
# The MX + SMTP mailbox check for the pattern finder's guesses: on when an envelope sender
# is set (the address mail servers see in MAIL FROM; use one your domain owns).
SMTP_VERIFY_FROM = env("SMTP_VERIFY_FROM", default="")
SMTP_VERIFY_HELO = env("SMTP_VERIFY_HELO", default="localhost")
SMTP_VERIFY_PORT = env.int("SMTP_VERIFY_PORT", default=25)
SMTP_VERIFY_TIMEOUT_SECONDS = env.float("SMTP_VERIFY_TIMEOUT_SECONDS", default=10.0)

HUNTER_API_KEY = env("HUNTER_API_KEY", default="")
HUNTER_BASE_URL = env("HUNTER_BASE_URL", default="https://api.hunter.io/v2")
# https://docs.peopledatalabs.com/docs
PDL_API_KEY = env("PDL_API_KEY", default="")
PDL_BASE_URL = env("PDL_BASE_URL", default="https://api.peopledatalabs.com/v5")
# https://docs.apollo.io/reference
APOLLO_API_KEY = env("APOLLO_API_KEY", default="")
APOLLO_BASE_URL = env("APOLLO_BASE_URL", default="https://api.apollo.io/api/v1")
# https://netrows.com/docs
NETROWS_API_KEY = env("NETROWS_API_KEY", default="")
NETROWS_BASE_URL = env("NETROWS_BASE_URL", default="https://api.netrows.com")
PROVIDER_HTTP_TIMEOUT_SECONDS = env.float("PROVIDER_HTTP_TIMEOUT_SECONDS", default=10.0)
# A worker sleeps for its rate-limit slot up to this long; a longer wait sends the run back
# to the queue (it costs no attempt) instead of holding a worker.
PROVIDER_MAX_INLINE_WAIT_SECONDS = env.float("PROVIDER_MAX_INLINE_WAIT_SECONDS", default=10.0)
# Our own limit is set this much under the vendor's, so clock jitter never earns a 429.
PROVIDER_RATE_LIMIT_MARGIN = env.float("PROVIDER_RATE_LIMIT_MARGIN", default=0.97)
# A vendor that says its quota is used up is not asked again for this long.
PROVIDER_QUOTA_PAUSE_SECONDS = env.int("PROVIDER_QUOTA_PAUSE_SECONDS", default=3600)
# Share of a budget at which the admin shows an alert.
PROVIDER_BUDGET_ALERT_AT = env.float("PROVIDER_BUDGET_ALERT_AT", default=0.8)

# --- The rest -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}
