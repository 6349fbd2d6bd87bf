"""Vendors' opt-out lists applied to our leads: a person who asked a vendor to stop
selling their data is suppressed here too, so no provider is asked about them again.

PDL publishes the ids of such people (its Subject Request API); a lead is theirs when one of
its values came from a PDL answer about that id, bought or served from the cache.
"""

from collections.abc import Iterable, Iterator
from itertools import islice

from django.db.models import Q

from leads.models import Lead
from leads.services import lead_suppress
from providers.models import ProviderCall

PDL_REASON = "opted out through a PDL data subject request"
CHUNK = 1000


def pdl_opt_outs_apply(*, pdl_ids: Iterable[str]) -> int:
    """Suppress every lead that PDL answered about one of these person ids; return how
    many leads were suppressed."""
    suppressed = 0
    for chunk in _chunks(pdl_ids):
        answers = ProviderCall.objects.filter(
            provider="pdl",
            operation="person_enrich",
            outcome=ProviderCall.Outcome.HIT,
            response__raw__person__id__in=chunk,
        )
        leads = Lead.objects.filter(
            Q(observations__provider_call__in=answers)
            | Q(observations__provider_call__cached_from__in=answers)
        ).distinct()
        for lead in leads:
            lead_suppress(lead=lead, reason=PDL_REASON)
            suppressed += 1
    return suppressed


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk
