"""Test settings: the same as base, quicker hashing, and Redis kept apart from real data."""

from config.settings.base import *  # noqa: F403
from config.settings.base import REDIS_URL, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests may flush their Redis database, so they get their own index on the same server.
TEST_REDIS_DB = env.int("TEST_REDIS_DB", default=14)
if REDIS_URL:
    from urllib.parse import urlsplit, urlunsplit

    _parts = urlsplit(REDIS_URL)
    REDIS_URL = urlunsplit(_parts._replace(path=f"/{TEST_REDIS_DB}"))
    CELERY_BROKER_URL = REDIS_URL
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Nothing is sent to a broker unless a test asks for it: on-create enrichment is tested
# explicitly, and most tests create leads without wanting runs.
ENRICH_ON_CREATE = False
# A test's runs are sent when its transaction commits, which most tests' never does: a
# Find Email POST would wait its whole time for a run no worker has. Tests of the quick
# answer set it.
RUN_ANSWER_WAIT_SECONDS = 0.0
