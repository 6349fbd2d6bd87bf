"""bench/fault_injection.py, shortened for CI: 150 leads, two workers, one SIGKILL and one
Redis restart, the sandbox failing as in the full run. It must find no violation.

The script runs as a subprocess (it sets Django up on a database and a Redis of its own,
which this process, already set up for the test database, cannot do) on the test's
PostgreSQL server, in a database named after the test database.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [pytest.mark.services, pytest.mark.django_db]

REPO = Path(__file__).resolve().parent.parent


def test_a_shortened_fault_run_finds_every_run_terminal_and_nothing_paid_twice(postgres):
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    server = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    database = re.sub(r"[^a-z0-9_]", "_", db["NAME"].lower())[:56] + "_fault"

    result = subprocess.run(
        [
            sys.executable,
            "bench/fault_injection.py",
            "--leads",
            "150",
            "--workers",
            "2",
            "--kills",
            "1",
            "--redis-restarts",
            "1",
            "--deadline",
            "150",
            "--database",
            database,
        ],
        cwd=REPO,
        env={**os.environ, "FAULT_PG_URL": server},
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = result.stdout + result.stderr
    print(output[-3000:])
    assert result.returncode == 0, output[-6000:]
    assert "SIGKILL worker group" in result.stdout
    assert "Redis killed" in result.stdout
    assert "OK: every run terminal, no lookup paid twice" in result.stdout
