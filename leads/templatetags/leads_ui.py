"""Small formatting helpers for the lead pages and the dashboard."""

from django import template
from django.utils import timezone

from accounts.roles import ROLES
from leads.selectors import confidence_band

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.934 → "93%"; None → "" (a deterministic check has no confidence)."""
    if value is None or value == "":
        return ""
    return f"{float(value):.0%}"


@register.filter
def initials(lead) -> str:
    first = (getattr(lead, "first_name", "") or "")[:1]
    last = (getattr(lead, "last_name", "") or "")[:1]
    letters = (first + last) or (getattr(lead, "email", "") or "?")[:1]
    return letters.upper()


@register.filter
def ago(moment) -> str:
    """A short age: "just now", "5 min ago", "3 h ago", "12 days ago", "4 months ago"."""
    if not moment:
        return ""
    seconds = (timezone.now() - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days < 60:
        return f"{days} day{'s' if days != 1 else ''} ago"
    return f"{days // 30} months ago"


@register.filter
def value_text(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


@register.filter
def share_pct(value) -> str:
    """A share in 0..1 as a CSS width: 0.42 → "42.0%"."""
    return f"{max(0.0, min(float(value or 0), 1.0)) * 100:.1f}%"


@register.filter
def ratio_pct(part, whole) -> str:
    if not whole:
        return "0%"
    return share_pct(float(part) / float(whole))


@register.filter
def role_names(user) -> str:
    names = [group.name for group in user.groups.all() if group.name in ROLES]
    if user.is_superuser and not names:
        names = ["Admin"]
    return ", ".join(names)


SOURCE_LABELS = {
    "manual": "typed in by hand",
    "record": "imported",
    "local": "local check",
    "pattern": "email pattern",
    "sandbox": "Sandbox",
    "hunter": "Hunter",
    "pdl": "People Data Labs",
    "apollo": "Apollo",
    "netrows": "Netrows",
}


@register.filter
def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source)


@register.filter
def band(field: str, confidence) -> str:
    """The badge class of a confidence for a field: high, review or low (its thresholds)."""
    return confidence_band(field, confidence)
