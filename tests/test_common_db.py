"""common.db: rows written by rows_insert and rows_update read back as the ORM would write them.

The PostgreSQL path sends most values to psycopg as they are, skipping the fields' own
conversion; these tests pin that every kind of value the pipeline writes survives that:
JSON of each shape, floats, nulls, foreign keys, choices and aware datetimes. They run on
whichever database the suite has (CI runs it on PostgreSQL and on the embedded SQLite).
"""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from common.db import rows_insert, rows_update
from enrichment.models import Observation
from leads.models import Company, Lead
from providers.models import ProviderCall

VALUES = ["ada@acme.com", ["python", "go"], {"city": "Paris", "country": "FR"}, 42, 0.5, False]


def _observation(lead, value, index, **extra):
    now = timezone.now()
    return Observation(
        lead=lead,
        field="technologies" if isinstance(value, list) else "email",
        value=value,
        confidence=None if index % 2 else 0.5 + index / 10,
        source="sandbox",
        state=Observation.State.PENDING_REVIEW,
        reason=f"reason {index} with a ' quote",
        observed_at=now - timedelta(days=index),
        expires_at=now + timedelta(days=index),
        **extra,
    )


def _as_read(row) -> dict:
    fields = ["lead_id", "company_id", "field", "value", "confidence", "source", "state"]
    fields += ["reason", "observed_at", "expires_at", "provider_call_id", "decided_at"]
    return {name: getattr(row, name) for name in fields}


def test_inserted_rows_get_their_keys_and_read_back_as_written(db):
    lead = Lead.objects.create(email="grace@navy.mil")
    call = ProviderCall.objects.create(
        provider="sandbox", operation="person", lookup_key_hash="h" * 64, idempotency_key="k"
    )
    rows = [_observation(lead, value, i) for i, value in enumerate(VALUES)]
    rows[0].provider_call = call
    rows_insert(rows)

    assert all(row.pk for row in rows) and len({row.pk for row in rows}) == len(rows)
    stored = {row.pk: row for row in Observation.objects.all()}
    for row in rows:
        assert _as_read(stored[row.pk]) == _as_read(row)
    assert stored[rows[0].pk].value == "ada@acme.com"
    assert stored[rows[2].pk].value == {"city": "Paris", "country": "FR"}
    assert stored[rows[5].pk].value is False


def test_updated_rows_take_each_their_own_values_and_leave_other_fields_alone(db):
    company = Company.objects.create(domain="acme.com")
    lead = Lead.objects.create(email="ada@acme.com")
    rows = [_observation(lead, value, i) for i, value in enumerate(VALUES)]
    rows_insert(rows)
    decided = timezone.now()
    for index, row in enumerate(rows):
        row.value = VALUES[-1 - index]
        row.state = Observation.State.APPROVED if index % 2 else Observation.State.REJECTED
        row.confidence = None if index % 3 else 0.9
        row.decided_at = decided + timedelta(minutes=index)
        row.reason = "changed, and not saved"
    rows_update(rows, ["value", "state", "confidence", "decided_at"])

    stored = {row.pk: row for row in Observation.objects.all()}
    for index, row in enumerate(rows):
        got = stored[row.pk]
        assert got.value == VALUES[-1 - index]
        assert got.state == row.state and got.confidence == row.confidence
        assert got.decided_at == decided + timedelta(minutes=index)
        assert got.reason == f"reason {index} with a ' quote"
        assert got.company_id is None and company.pk

    lead.job_title, lead.last_enriched_at = "CTO", decided
    rows_update([lead], ["job_title", "last_enriched_at"])
    lead.refresh_from_db()
    assert (lead.job_title, lead.last_enriched_at) == ("CTO", decided)


# Text a hand-built statement could mangle: commas, braces, quotes, a backslash, the word
# NULL, spaces at the ends, an empty string and other scripts.
AWKWARD = ["a,b", "{x}", 'say "hi"', "back\\slash", "NULL", "  padded  ", "", "Zoë 東京 ✓"]


def test_updated_text_json_and_nulls_survive_whatever_their_characters(db):
    rows = [
        ProviderCall(
            provider="sandbox",
            operation="person",
            lookup_key_hash=f"{i}" * 64,
            idempotency_key=f"k{i}",
        )
        for i in range(len(AWKWARD))
    ]
    rows_insert(rows)
    responses = [None, *({"text": text, "list": [text]} for text in AWKWARD[1:])]
    for index, (row, text, response) in enumerate(zip(rows, AWKWARD, responses, strict=True)):
        row.error, row.response, row.http_status = text, response, None
        row.credits = Decimal(f"{index}.125")
    rows[1].response = [None, "NULL", 1.5]
    rows[2].response = "just text"
    rows_update(rows, ["error", "response", "http_status", "credits"])

    stored = {row.pk: row for row in ProviderCall.objects.all()}
    for row in rows:
        got = stored[row.pk]
        assert (got.error, got.response, got.http_status) == (row.error, row.response, None)
        assert got.credits == row.credits
    assert stored[rows[0].pk].response is None
