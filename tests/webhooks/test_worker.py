"""A real Celery worker delivers a published event to a real local endpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from webhooks.models import Delivery
from webhooks.services import webhook_event_publish

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def webhooks_worker(postgres, redis_url, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "WEBHOOK_RETRY_SCHEDULE": "1,1,1",
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "webhooks",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_delivers_and_retries_through_the_webhooks_queue(
    webhooks_worker, receiver, subscribe
):
    subscribe(receiver.url)
    # The first attempt fails; the retry (1 s later, on the message's countdown) succeeds.
    receiver.answer(503)
    with transaction.atomic():
        (delivery_id,) = webhook_event_publish(event="lead.enriched", payload={"lead_id": 1})
    assert _wait_for(
        lambda: Delivery.objects.get(id=delivery_id).state == Delivery.State.DELIVERED
    ), Delivery.objects.get(id=delivery_id).last_error
    delivery = Delivery.objects.get(id=delivery_id)
    assert delivery.attempts == 2
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
