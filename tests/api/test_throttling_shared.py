"""The request budget is shared by every web process through Redis."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from api.services import api_key_create

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]

# Another web process: three requests with the same key through the real app.
OTHER_PROCESS = """
import django
django.setup()
from django.test import Client
client = Client(
    headers={"Authorization": "Bearer " + __import__("os").environ["KEY"]},
    SERVER_NAME="localhost",
)
print(" ".join(str(client.get("/api/leads/").status_code) for _ in range(3)))
"""


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_requests_in_another_process_count_against_the_same_budget(
    postgres, redis_url, settings, client
):
    # Per day, so the window cannot roll over between the two processes.
    settings.API_THROTTLE_RATE = "3/day"
    key = api_key_create(name="shared-budget", role="sdr").key
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "API_THROTTLE_RATE": "3/day",
        "KEY": key,
    }
    other = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert other.stdout.split() == ["200", "200", "200"]
    response = client.get("/api/leads/", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"
