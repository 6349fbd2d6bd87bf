"""Settings for every environment, read from the environment once.

With DATABASE_URL and REDIS_URL unset Leadsmith runs embedded: SQLite in WAL mode and a
Celery broker on the local filesystem, so `make demo` needs no server. With them set it
uses PostgreSQL and Redis (broker, cache and, later, the shared rate limiter).
"""

from email.utils import parseaddr
from pathlib import Path

import environ
from kombu import Queue

from config.logging import logging_config

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
    "accounts",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "webhooks",
    "imports",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RequestIdMiddleware",
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

# A signed-in request reads its session from the cache, not the database; the database
# still holds every session, so a flushed cache signs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Celery ---------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # An unacknowledged message comes back only after this; it must stay above the
        # hard time limit or a slow task would be delivered twice while still running.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # One Redis list per priority 0-9 (0 is taken first): high-value leads jump the
        # queue. Queues stay round robin, so maintenance is never starved by enrichment.
        # https://docs.celeryq.dev/en/stable/userguide/routing.html#redis-message-priorities
        "priority_steps": list(range(10)),
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
        # kombu lists the folder once a second by default: a Find Email would wait up to a
        # second for a worker to notice it. A tenth of a second costs ten cheap listings.
        "polling_interval": 0.1,
    }

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Runs are rows: their state lives in EnrichmentRun, so Celery keeps no results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connections before and after every task
# unless this is set, so a worker opened a new PostgreSQL connection for every run: 5% of
# a Find Email run's time in the worker went to connecting, and each new backend then read
# its catalogs afresh. Set this high, the fixup leaves them alone; config.celery tidies
# them around each task as Django does around a request (CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 10**9
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_TASK_DEFAULT_QUEUE = "enrichment"
# A worker started without -Q consumes every queue listed here.
CELERY_TASK_QUEUES = [
    Queue("enrichment"),
    Queue("maintenance"),
    Queue("webhooks"),
    Queue("imports"),
]
# The periodic tasks are PeriodicTask rows (created by a data migration, edited in the
# admin under Periodic tasks), so a schedule changes without a deploy.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Enrichment -----------------------------------------------------------------------
ENRICH_ON_CREATE = env.bool("ENRICH_ON_CREATE", default=True)
# Default region for phone numbers written without a country code.
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="US")
ENRICHMENT_FRESHNESS_DAYS = env.int("ENRICHMENT_FRESHNESS_DAYS", default=90)
# Runs sent together travel in messages of this many, so providers with a bulk endpoint
# answer them in one request (PDL takes 100, Apollo 10). A batch must finish within the
# task time limits above: with slow vendors, raise those or lower this.
ENRICHMENT_BATCH_SIZE = env.int("ENRICHMENT_BATCH_SIZE", default=50)
# Claims after which a run that keeps losing its worker or failing transiently is dead.
ENRICHMENT_MAX_ATTEMPTS = env.int("ENRICHMENT_MAX_ATTEMPTS", default=3)
# A transient failure retries after this many seconds, doubled at each attempt (30, 60, …).
ENRICHMENT_RETRY_BACKOFF_SECONDS = env.int("ENRICHMENT_RETRY_BACKOFF_SECONDS", default=30)
# A run RUNNING for longer than the hard time limit plus this lost its worker.
ENRICHMENT_RUN_STALE_GRACE_SECONDS = env.int("ENRICHMENT_RUN_STALE_GRACE_SECONDS", default=30)
# A QUEUED run whose message went out this long ago and was never claimed is sent again.
ENRICHMENT_REQUEUE_AFTER_SECONDS = env.int("ENRICHMENT_REQUEUE_AFTER_SECONDS", default=600)
# Misses are cached this long; hits until the field's freshness threshold.
PROVIDER_MISS_TTL_DAYS = env.int("PROVIDER_MISS_TTL_DAYS", default=30)
# Scheduled refresh: at most this many refresh runs wait in the queue at once, so a backlog
# of stale leads is worked off at a bounded pace instead of flooding the workers.
ENRICHMENT_REFRESH_MAX_QUEUED = env.int("ENRICHMENT_REFRESH_MAX_QUEUED", default=500)
# A field a refresh could not renew (the provider no longer knows it) is tried again after
# this many days, not at every tick.
ENRICHMENT_REFRESH_RETRY_DAYS = env.int("ENRICHMENT_REFRESH_RETRY_DAYS", default=30)
# The lead page's run status waits this long for the run to end before it answers "still
# running" (and the page asks again at once): the outcome shows the moment it is there.
# Each waiting page holds a web thread (gunicorn.conf.py) for at most this long.
RUN_STATUS_WAIT_SECONDS = env.float("RUN_STATUS_WAIT_SECONDS", default=5.0)
# Find Email's and Re-enrich's POST waits this long for its run and answers with the
# outcome when the run is quick, saving the page a second request; after it, the page gets
# the run's status (above). 0 answers at once, as does a request that says
# `Prefer: respond-async`.
RUN_ANSWER_WAIT_SECONDS = env.float("RUN_ANSWER_WAIT_SECONDS", default=1.5)
# Score (0-100) from which an enriched lead is high-value: its owner is told once.
LEAD_HIGH_VALUE_SCORE = env.int("LEAD_HIGH_VALUE_SCORE", default=70)
# Raw vendor payloads in the ledger are dropped after this many days (GDPR minimisation).
PROVIDER_PAYLOAD_RETENTION_DAYS = env.int("PROVIDER_PAYLOAD_RETENTION_DAYS", default=90)

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
# A vendor answer larger than this is refused unread: a broken vendor cannot fill a worker's memory.
PROVIDER_MAX_RESPONSE_BYTES = env.int("PROVIDER_MAX_RESPONSE_BYTES", default=5 * 1024 * 1024)
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
# ModelBackend with its permission reads held per process until they change.
AUTHENTICATION_BACKENDS = ["accounts.backends.CachedPermissionsBackend"]
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
# Uploaded CSV imports and their error reports. Workers on other machines need the same
# folder (a shared volume) or a remote storage backend.
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"
# A CSV import runs as one task: a million rows takes minutes, not the default 150 s. It
# must stay below CELERY_VISIBILITY_TIMEOUT like every other limit.
CSV_IMPORT_TIME_LIMIT_SECONDS = env.int("CSV_IMPORT_TIME_LIMIT_SECONDS", default=1800)

# Sign-in for the lead pages; the admin keeps its own login page.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "leads:list"
LOGOUT_REDIRECT_URL = "login"

# --- API and webhooks -----------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "api.permissions.HasRolePermission",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ClientRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Requests per client (API key or signed-in user) and per address without either, counted
# in the cache: Redis when REDIS_URL is set, so shared by every web process.
API_THROTTLE_RATE = env("API_THROTTLE_RATE", default="600/minute")
API_THROTTLE_ANON_RATE = env("API_THROTTLE_ANON_RATE", default="60/minute")
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Leadsmith API",
    "DESCRIPTION": "Leads, enrichment runs, observations and the review queue. Authenticate "
    "with `Authorization: Bearer <key>` (manage.py create_api_key). Errors are JSON: "
    '{"code", "message", "errors"?}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    # Swagger UI from this server's static files, not a CDN: the docs work offline too.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.lead_create_takes_lists",
    ],
    "ENUM_NAME_OVERRIDES": {"EmailVerificationEnum": "leads.models.Lead.EmailVerification"},
}
# Outbound webhooks: Standard Webhooks' schedule (seconds before each retry), about a day.
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=int, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# A due delivery whose message nobody took is sent again after this.
WEBHOOK_REQUEUE_AFTER_SECONDS = env.int("WEBHOOK_REQUEUE_AFTER_SECONDS", default=300)
# Inbound provider callbacks: the address providers reach this service at, and how long a
# callback URL stays valid.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
INBOUND_WEBHOOK_TTL_SECONDS = env.int("INBOUND_WEBHOOK_TTL_SECONDS", default=7 * 24 * 3600)

# One JSON object a line (LOG_FORMAT=json, production's default) or plain text, both with
# the request and run ids; secrets and email addresses are masked (config/logging.py).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))

# --- Mail and operations --------------------------------------------------------------
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-email-url
# e.g. smtp+tls://user:password@smtp.example.com:587; the default prints mail to stdout.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="leadsmith@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Budget alerts and errors go to these: "Ada <ada@example.com>,Bob <bob@example.com>".
ADMINS = [parseaddr(entry) for entry in env.list("DJANGO_ADMINS", default=[])]
# Each readiness check (database, Redis, broker) must answer within this.
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=2.0)
