"""Normalize identities on the way in. A value that cannot be normalized is rejected with
an InvalidValue that names the field, the value and the reason; nothing is stored mangled."""

import hashlib
import re
from functools import cache
from urllib.parse import urlsplit

import phonenumbers
import tldextract
from disposable_email_domains import blocklist as _DISPOSABLE_DOMAINS
from django.conf import settings
from email_validator import EmailNotValidError, validate_email


class InvalidValue(ValueError):
    """A value that cannot be stored as given."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field} {str(value)!r} is not valid: {reason}")


@cache
def _extractor() -> tldextract.TLDExtract:
    # The bundled public-suffix snapshot only: never reach for the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def normalize_email(value: str) -> str:
    """Return the address lowercased after a syntax check (no DNS)."""
    raw = (value or "").strip()
    if not raw:
        raise InvalidValue("email", value, "it is empty")
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue("email", value, str(exc)) from None
    return checked.normalized.lower()


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[1]


def normalize_domain(value: str) -> str:
    """Return the registrable domain of a bare domain, a URL or an email address."""
    raw = (value or "").strip().lower()
    if not raw:
        raise InvalidValue("domain", value, "it is empty")
    if "@" in raw:
        raw = raw.rsplit("@", 1)[1]
    try:
        host = urlsplit(raw if "//" in raw else f"//{raw}").hostname or ""
    except ValueError:
        # urlsplit reads "[" as the start of an IPv6 literal and refuses a broken one.
        host = ""
    if not host or " " in host:
        raise InvalidValue("domain", value, "it has no host name")
    if not host.isascii() or "xn--" in host:
        host = _idna_host(value, host)
    parts = _extractor()(host)
    if not parts.suffix:
        raise InvalidValue("domain", value, "it does not end in a known public suffix")
    if not parts.domain:
        raise InvalidValue("domain", value, "it is a public suffix, not a company's domain")
    return f"{parts.domain}.{parts.suffix}"


def _idna_host(value: str, host: str) -> str:
    """Return an internationalized host in the one form normalize_email gives its domain
    (Unicode, NFC, IDNA 2008), so `bücher.de`, `BÜCHER.DE` and `xn--bcher-kva.de` are one
    company, the same one as `ada@xn--bcher-kva.de`'s."""
    try:
        return validate_email(f"postmaster@{host}", check_deliverability=False).domain
    except EmailNotValidError:
        raise InvalidValue("domain", value, "it is not a valid internationalized domain") from None


def normalize_phone(value: str, *, region: str | None = None) -> str:
    """Return the number in E.164; numbers without a country code use the default region."""
    raw = (value or "").strip()
    if not raw:
        raise InvalidValue("phone", value, "it is empty")
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("phone", value, str(exc)) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone", value, "it is not a valid number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_LINKEDIN_PROFILE = re.compile(r"^/(in|pub)/([^/?#]+)", re.IGNORECASE)
# A slug is one word of a URL: whitespace or a control character means it is not one.
_NOT_IN_A_SLUG = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def normalize_linkedin_url(value: str) -> str:
    """Return `https://www.linkedin.com/in/<slug>` for any form of a profile URL."""
    raw = (value or "").strip()
    if not raw:
        raise InvalidValue("linkedin_url", value, "it is empty")
    try:
        parts = urlsplit(raw if "//" in raw else f"https://{raw}")
        host = (parts.hostname or "").lower()
    except ValueError:
        # A broken "[IPv6]" host: whatever it is, it is not linkedin.com.
        host = ""
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        raise InvalidValue("linkedin_url", value, "it is not a linkedin.com address")
    match = _LINKEDIN_PROFILE.match(parts.path)
    if not match or _NOT_IN_A_SLUG.search(match.group(2)):
        raise InvalidValue("linkedin_url", value, "it is not a profile URL (/in/<name>)")
    return f"https://www.linkedin.com/in/{match.group(2).lower()}"


def person_name_key(first_name: str, last_name: str, domain: str) -> str:
    """Return the identity of a person known only by name and company domain."""
    if not (first_name and last_name and domain):
        return ""
    return f"{first_name.strip().casefold()}|{last_name.strip().casefold()}|{domain}"


def identity_hash(value: str) -> str:
    """Return the hash under which an already normalized identifier is suppressed or cached."""
    return hashlib.sha256(value.encode()).hexdigest()


# Registrable domains of free mailbox providers: an address there says nothing about the
# person's employer, so it must not become their Company.
WEBMAIL_DOMAINS = frozenset(
    {
        "aol.com",
        "btinternet.com",
        "comcast.net",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hey.com",
        "hotmail.co.uk",
        "hotmail.com",
        "hotmail.fr",
        "icloud.com",
        "libero.it",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "naver.com",
        "orange.fr",
        "outlook.com",
        "pm.me",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "t-online.de",
        "tutanota.com",
        "web.de",
        "yahoo.co.uk",
        "yahoo.com",
        "yahoo.fr",
        "yandex.com",
        "yandex.ru",
        "ymail.com",
        "zoho.com",
        "163.com",
        "126.com",
    }
)


def is_webmail_domain(domain: str) -> bool:
    return domain.casefold() in WEBMAIL_DOMAINS


def is_disposable_domain(domain: str) -> bool:
    return domain.casefold() in _DISPOSABLE_DOMAINS
