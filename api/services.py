"""Write paths behind the API that no other app owns: keys, bulk upsert answers, lead edits."""

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from api.models import ApiKey
from api.selectors import lead_run_in_flight
from enrichment.fields import FIELDS
from enrichment.models import EnrichmentRun
from enrichment.review import field_set_manually
from enrichment.services import runs_create
from leads.models import Lead
from leads.normalize import InvalidValue
from leads.services import LeadInput, lead_input_from_mapping, leads_upsert

KEY_PREFIX = "lsk_"
# A key is "lsk_" + 8 hex characters (stored, shown in lists) + "_" + the secret.
_PUBLIC_HEX = 8
# last_used_at is written at most this often, so reading the API costs no write per call.
_LAST_USED_EVERY = timedelta(minutes=1)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # the full key: shown once, never stored


@transaction.atomic
def api_key_create(*, name: str, role: str) -> IssuedKey:
    """Create a key and the account it acts as; return the key (the only time it exists).

    Raises ValueError when the name is taken or the role is unknown.
    """
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name (the integration it is for)")
    if role not in ApiKey.Role.values:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ApiKey.Role.values)}")
    if ApiKey.objects.filter(name=name).exists():
        raise ValueError(f"an API key named {name!r} exists already")
    public = secrets.token_hex(_PUBLIC_HEX // 2)
    key = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    user_model = get_user_model()
    user = user_model(username=f"api-{public}", first_name=name[:150])
    # The account signs in only with the key; it has no password.
    user.set_unusable_password()
    user.save()
    api_key = ApiKey.objects.create(
        name=name, role=role, prefix=public, key_hash=key_hash(key), user=user
    )
    return IssuedKey(api_key=api_key, key=key)


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """Return the active key this string is, or None; the comparison takes constant time."""
    if not key.startswith(KEY_PREFIX):
        return None
    public, _, rest = key[len(KEY_PREFIX) :].partition("_")
    if len(public) != _PUBLIC_HEX or not rest:
        return None
    api_key = (
        ApiKey.objects.select_related("user").filter(prefix=public, revoked_at__isnull=True).first()
    )
    if api_key is None or not hmac.compare_digest(api_key.key_hash, key_hash(key)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or api_key.last_used_at < now - _LAST_USED_EVERY:
        ApiKey.objects.filter(id=api_key.id).update(last_used_at=now)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(id=api_key.id, revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- Upsert with an answer per item -----------------------------------------------------


@dataclass
class ItemResult:
    """What happened to one item of a create call, in the caller's order."""

    index: int
    status: str  # created, updated, unchanged, duplicate, suppressed, invalid
    lead_id: int | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


def leads_upsert_items(
    *, items: Sequence[Mapping[str, Any]], source: str, origin: str
) -> list[ItemResult]:
    """Normalize each item, upsert the valid ones in one transaction, answer per item.

    An invalid item is reported with the field and the reason and costs the others nothing.
    An item that repeats an identity seen earlier in the call is `duplicate` and points at
    the lead the earlier item went to.
    """
    results: list[ItemResult] = []
    valid: list[tuple[int, LeadInput]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, _lead_input(item)))
            results.append(ItemResult(index=index, status="pending"))
        except InvalidValue as exc:
            results.append(ItemResult(index=index, status="invalid", errors=[_error(exc)]))
    if not valid:
        return results
    inputs = [item for _, item in valid]
    outcome = leads_upsert(inputs=inputs, source=source, origin=origin)
    suppressed = set(outcome.suppressed_positions)
    lead_ids = _lead_ids_for(inputs)
    created, updated = set(outcome.created), set(outcome.updated)
    seen: set[int] = set()
    for position, (index, _) in enumerate(valid):
        result = results[index]
        if position in suppressed:
            result.status = "suppressed"
            result.errors = [
                {"field": "identity", "message": "this person is on the suppression list"}
            ]
            continue
        lead_id = lead_ids[position]
        result.lead_id = lead_id
        if lead_id in seen:
            result.status = "duplicate"
        elif lead_id in created:
            result.status = "created"
        elif lead_id in updated:
            result.status = "updated"
        else:
            result.status = "unchanged"
        if lead_id is not None:
            seen.add(lead_id)
    return results


def _lead_input(item: Mapping[str, Any]) -> LeadInput:
    try:
        return lead_input_from_mapping(item)
    except InvalidValue:
        raise
    except ValueError as exc:
        # The URL parser behind the domain and LinkedIn normalizers raises a bare ValueError
        # on some text (an unbalanced "["); it is still the caller's input that is wrong.
        raise InvalidValue("item", "", f"a value cannot be read ({exc})") from None


def _error(exc: InvalidValue) -> dict[str, str]:
    return {"field": exc.field, "message": str(exc)}


def _lead_ids_for(inputs: Sequence[LeadInput]) -> list[int | None]:
    """Return the lead each input went to, matched in leads_upsert's order: email, LinkedIn
    URL, then name at the company domain (a later key only when the earlier found none)."""
    emails = {item.email for item in inputs if item.email}
    linkedins = {item.linkedin_url for item in inputs if item.linkedin_url}
    by_email = dict(Lead.objects.filter(email__in=emails).values_list("email", "id"))
    by_linkedin: dict[str, int] = {}
    for url, lead_id in Lead.objects.filter(linkedin_url__in=linkedins).values_list(
        "linkedin_url", "id"
    ):
        by_linkedin.setdefault(url, lead_id)
    ids: list[int | None] = []
    for item in inputs:
        lead_id = by_email.get(item.email) if item.email else None
        if lead_id is None and item.linkedin_url:
            lead_id = by_linkedin.get(item.linkedin_url)
        if lead_id is None and item.first_name and item.last_name and item.company_domain:
            lead_id = (
                Lead.objects.alias(first=Lower("first_name"), last=Lower("last_name"))
                .filter(
                    first=item.first_name.lower(),
                    last=item.last_name.lower(),
                    company__domain=item.company_domain,
                )
                .order_by("id")
                .values_list("id", flat=True)
                .first()
            )
        ids.append(lead_id)
    return ids


# --- Editing, enriching, deleting ---------------------------------------------------------

# Lead columns that are identity only: written as given, no observation behind them.
_PLAIN_COLUMNS = ("first_name", "last_name")


def lead_update_manually(*, lead: Lead, values: Mapping[str, Any], user) -> Lead:
    """Set fields of the lead by hand, all or none.

    Enrichable fields become manual observations (applied and locked: no provider
    overwrites them); first and last name are written as given. Raises InvalidValue naming
    the field when a value does not normalize or the email belongs to another lead.
    """
    with transaction.atomic():
        plain = {
            name: " ".join(str(values[name]).split()) for name in _PLAIN_COLUMNS if name in values
        }
        for name, value in values.items():
            if name in FIELDS:
                try:
                    field_set_manually(subject=lead, field=name, value=value, user=user)
                except InvalidValue:
                    raise
                except ValueError as exc:
                    # As in _lead_input: the URL parser's own error on unreadable text.
                    raise InvalidValue(name, value, f"it cannot be read ({exc})") from None
        if plain:
            Lead.objects.filter(id=lead.id).update(**plain, updated_at=timezone.now())
    return Lead.objects.select_related("company").get(id=lead.id)


def lead_enrich(
    *, lead: Lead, fields: Sequence[str] = (), providers: Sequence[str] = ()
) -> EnrichmentRun:
    """Queue a run for the lead (asking only `providers` when given) and return it; a run
    already in flight is returned instead, whatever it was limited to."""
    for _ in range(2):
        runs = runs_create(
            lead_ids=[lead.id],
            trigger=EnrichmentRun.Trigger.MANUAL,
            fields=list(fields),
            providers=list(providers),
            description="API request",
        )
        if runs:
            return runs[0]
        in_flight = lead_run_in_flight(lead)
        if in_flight is not None:
            return in_flight
        # The run in flight finished between the two reads: a new one can be created now.
    raise RuntimeError(f"lead {lead.id}: no run could be created or found")


def lead_delete(*, lead: Lead) -> None:
    """Delete the lead with its runs and observations (erasure is privacy's, not this)."""
    lead.delete()
