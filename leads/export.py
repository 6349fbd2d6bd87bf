"""Lead export as CSV, streamed: rows come from a server-side cursor and leave as text in
small pieces, so a million leads take the memory of a few thousand.

Every cell goes through `csv_safe`: a cell a spreadsheet would run as a formula (one that
starts with =, +, -, @, a tab or a carriage return) is prefixed with a single quote, as
the OWASP CSV injection guidance recommends; a spreadsheet shows the text as it was.
https://owasp.org/www-community/attacks/CSV_Injection
"""

import csv
import io
from collections.abc import Iterator

from django.db.models import QuerySet

from leads.models import Lead

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Rows per database round trip and per piece of output.
EXPORT_CHUNK = 2000

EXPORT_COLUMNS: dict[str, str] = {
    "id": "id",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "company__domain": "company_domain",
    "company__name": "company_name",
    "linkedin_url": "linkedin_url",
    "phone": "phone",
    "job_title": "job_title",
    "seniority": "seniority",
    "department": "department",
    "location": "location",
    "email_verification": "email_verification",
    "enrichment_status": "enrichment_status",
    "last_enriched_at": "last_enriched_at",
    "source": "source",
    "created_at": "created_at",
}


def csv_safe(value: object) -> str:
    """Return the value as a CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def leads_csv_chunks(
    queryset: QuerySet[Lead] | None = None, *, chunk_size: int = EXPORT_CHUNK
) -> Iterator[str]:
    """Yield the leads as CSV text (a header, then one row per lead, oldest first) in
    pieces of `chunk_size` rows, read through a server-side cursor."""
    queryset = Lead.objects.all() if queryset is None else queryset
    rows = queryset.order_by("id").values_list(*EXPORT_COLUMNS).iterator(chunk_size=chunk_size)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS.values())
    for count, row in enumerate(rows, start=1):
        writer.writerow([csv_safe(value) for value in row])
        if count % chunk_size == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
