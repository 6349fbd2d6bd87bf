"""Hooks other apps attach to without `leads` knowing them."""

from django.dispatch import Signal

# Sent inside the transaction that created the leads: lead_ids (list[int]), origin (str).
leads_created = Signal()
