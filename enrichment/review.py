"""What people decide about values: a reviewer's approve, reject and correct, and an SDR's
manual edit.

Every decision writes observations and the Lead/Company column in one transaction, with
the subject row locked like the pipeline's own write, so a run finishing at the same moment
merges against the decision instead of racing it. A decided value is locked: approved or
manual values are never overwritten by a provider (enrichment.merge rule 2), and a rejected
value is not proposed again by the same source (rule 1, through `rejected_proposals`).
"""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from enrichment.fields import FIELDS, Entity
from enrichment.local_checks import email_verification
from enrichment.merge import value_key
from enrichment.models import Observation
from enrichment.selectors import MANUAL_SOURCE
from leads.models import Company, Lead
from leads.normalize import (
    InvalidValue,
    normalize_email,
    normalize_linkedin_url,
    normalize_phone,
)

# Whatever a person states is as sure as Leadsmith gets; it is also locked.
MANUAL_CONFIDENCE = 1.0


class ReviewError(ValueError):
    """The observation cannot be decided as asked (already decided, or it would clash)."""


_NORMALIZERS = {
    "email": normalize_email,
    "phone": normalize_phone,
    "linkedin_url": normalize_linkedin_url,
}


def _column_limit(spec) -> int | None:
    model = Lead if spec.entity is Entity.LEAD else Company
    return model._meta.get_field(spec.column).max_length


def field_value_normalize(*, field: str, value: Any) -> str | list[str]:
    """Return `value` as it would be stored in `field`; raise InvalidValue naming the field
    and the reason when it cannot be (unknown field, empty, malformed, too long)."""
    spec = FIELDS.get(field)
    if spec is None:
        raise InvalidValue(field, value, f"it is not an enrichable field ({', '.join(FIELDS)})")
    if field == "technologies":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise InvalidValue(field, value, "it must be a list of names, or names separated by ,")
        cleaned = list(dict.fromkeys(" ".join(item.split()) for item in items))
        cleaned = [item for item in cleaned if item]
        if not cleaned:
            raise InvalidValue(field, value, "it is empty")
        return cleaned
    if not isinstance(value, str):
        raise InvalidValue(field, value, "it must be text")
    normalize = _NORMALIZERS.get(field)
    if normalize is not None:
        try:
            cleaned = normalize(value)
        except InvalidValue as exc:
            # The normalizers name their own kind of value; the caller asked about this field.
            raise InvalidValue(field, value, exc.reason) from None
    else:
        cleaned = " ".join(value.split())
        if not cleaned:
            raise InvalidValue(field, value, "it is empty")
    limit = _column_limit(spec)
    if limit is not None and len(cleaned) > limit:
        raise InvalidValue(field, value, f"it is longer than {limit} characters")
    return cleaned


def _subject_of(observation: Observation) -> Lead | Company:
    return observation.lead if observation.lead_id else observation.company


def _locked_subject(subject: Lead | Company) -> Lead | Company:
    model = type(subject)
    return model.objects.select_for_update().get(id=subject.id)


def _check_field_belongs(subject: Lead | Company, field: str, value: Any) -> None:
    entity = Entity.LEAD if isinstance(subject, Lead) else Entity.COMPANY
    if FIELDS[field].entity is not entity:
        raise InvalidValue(field, value, f"it is not a field of a {entity.value}")


def _check_email_free(subject: Lead | Company, field: str, value: Any) -> None:
    """An address belongs to one lead only (the column is unique)."""
    if field != "email" or not isinstance(subject, Lead):
        return
    other = Lead.objects.filter(email=value).exclude(id=subject.id).values_list("id", flat=True)
    other_id = other.first()
    if other_id is not None:
        raise InvalidValue(field, value, f"it is already the email of lead {other_id}")


def _apply(
    *,
    subject: Lead | Company,
    field: str,
    value: Any,
    verification: str,
    keep: Observation | None = None,
) -> None:
    """Write `value` to the subject's column and supersede the field's earlier current
    observations (all but `keep`, the one that now holds the value)."""
    spec = FIELDS[field]
    current = Observation.objects.filter(
        field=field, state__in=Observation.CURRENT_STATES, **_subject_kwargs(subject)
    )
    if keep is not None:
        current = current.exclude(id=keep.id)
    current.update(state=Observation.State.SUPERSEDED)
    setattr(subject, spec.column, value)
    update_fields = [spec.column, "updated_at"]
    if field == "email":
        subject.email_verification = verification
        update_fields.append("email_verification")
    subject.save(update_fields=update_fields)


def _subject_kwargs(subject: Lead | Company) -> dict[str, Lead | Company]:
    return {"lead": subject} if isinstance(subject, Lead) else {"company": subject}


def _settle_duplicates(
    decided: Observation, *, state: str, reason: str, user, source: str | None = None
) -> int:
    """Decide the other pending proposals of the same value for the same field alike.

    Several runs (one per lead of a company, or a re-run) can propose one value again; once
    a person has decided it, the copies must not wait in the queue for the same decision.
    With `source`, only that source's copies (a rejection is about one source's claim).
    """
    subject = (
        {"lead_id": decided.lead_id} if decided.lead_id else {"company_id": decided.company_id}
    )
    copies = Observation.objects.filter(
        **subject, field=decided.field, state=Observation.State.PENDING_REVIEW
    ).exclude(id=decided.id)
    if source is not None:
        copies = copies.filter(source=source)
    same = [
        copy.id
        for copy in copies.only("id", "value")
        if value_key(copy.value) == value_key(decided.value)
    ]
    return Observation.objects.filter(id__in=same).update(
        state=state, reason=reason[:255], decided_by=user, decided_at=decided.decided_at
    )


def _claim_pending(observation: Observation) -> Observation:
    """Lock the observation and insist it still waits for review."""
    locked = Observation.objects.select_for_update().get(id=observation.id)
    if locked.state != Observation.State.PENDING_REVIEW:
        raise ReviewError(
            f"observation {locked.id} ({locked.field} from {locked.source}) is "
            f"{locked.get_state_display().lower()}, not pending review"
        )
    return locked


def observation_approve(*, observation: Observation, reviewer) -> Observation:
    """Apply a pending value to its lead or company and lock it (state approved)."""
    now = timezone.now()
    with transaction.atomic():
        subject = _locked_subject(_subject_of(observation))
        pending = _claim_pending(observation)
        try:
            _check_email_free(subject, pending.field, pending.value)
        except InvalidValue as exc:
            raise ReviewError(f"cannot approve: {exc}") from None
        pending.state = Observation.State.APPROVED
        pending.decided_by = reviewer
        pending.decided_at = now
        pending.save(update_fields=["state", "decided_by", "decided_at"])
        verification = pending.verification
        if pending.field == "email" and not verification:
            verification = email_verification(pending.value)
        _apply(
            subject=subject,
            field=pending.field,
            value=pending.value,
            verification=verification,
            keep=pending,
        )
        _settle_duplicates(
            pending,
            state=Observation.State.SUPERSEDED,
            reason=f"the same value was approved (observation {pending.id})",
            user=reviewer,
        )
    return pending


def observation_reject(*, observation: Observation, reviewer, reason: str = "") -> Observation:
    """Reject a pending value; its source will not get it applied or proposed again."""
    now = timezone.now()
    with transaction.atomic():
        pending = _claim_pending(observation)
        pending.state = Observation.State.REJECTED
        pending.decided_by = reviewer
        pending.decided_at = now
        pending.reason = (reason.strip() or "rejected by a reviewer")[:255]
        pending.save(update_fields=["state", "decided_by", "decided_at", "reason"])
        _settle_duplicates(
            pending,
            state=Observation.State.REJECTED,
            reason=pending.reason,
            user=reviewer,
            source=pending.source,
        )
    return pending


def observation_correct(*, observation: Observation, reviewer, value: Any) -> Observation:
    """Reject the pending value and apply the reviewer's own, as a locked manual value.

    Returns the new manual observation. Raises InvalidValue (nothing changed) when the
    corrected value does not normalize.
    """
    with transaction.atomic():
        pending = _claim_pending(observation)
        subject = _subject_of(pending)
        cleaned = field_value_normalize(field=pending.field, value=value)
        observation_reject(
            observation=pending, reviewer=reviewer, reason=f"corrected to {cleaned!r}"[:255]
        )
        return field_set_manually(
            subject=subject, field=pending.field, value=cleaned, user=reviewer
        )


def field_set_manually(*, subject: Lead | Company, field: str, value: Any, user) -> Observation:
    """Set one field of a lead or company by hand: a `manual` observation, applied and
    locked, and the column updated.

    Raises InvalidValue naming the field and the reason, and changes nothing, when the value
    does not normalize, the field is not the subject's, or the email belongs to another lead.
    """
    cleaned = field_value_normalize(field=field, value=value)
    _check_field_belongs(subject, field, value)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked_subject(subject)
        _check_email_free(locked, field, cleaned)
        verification = email_verification(cleaned) if field == "email" else ""
        observation = Observation.objects.create(
            **_subject_kwargs(locked),
            field=field,
            value=cleaned,
            confidence=MANUAL_CONFIDENCE,
            verification=verification,
            source=MANUAL_SOURCE,
            state=Observation.State.APPLIED,
            reason="set by hand",
            observed_at=now,
            expires_at=now + timedelta(days=FIELDS[field].fresh_for_days),
            decided_by=user,
            decided_at=now,
        )
        _apply(
            subject=locked,
            field=field,
            value=cleaned,
            verification=verification,
            keep=observation,
        )
        _settle_duplicates(
            observation,
            state=Observation.State.SUPERSEDED,
            reason=f"the same value was set by hand (observation {observation.id})",
            user=user,
        )
    # The caller's instance shows what was stored, as after a save().
    setattr(subject, FIELDS[field].column, cleaned)
    if field == "email":
        subject.email_verification = verification
    return observation
