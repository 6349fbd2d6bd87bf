"""Which providers are on: each is enabled by its own settings, read at every call."""

from django.conf import settings

from common.cached_tables import CachedTable
from providers.apollo.adapter import ApolloProvider
from providers.base import Provider
from providers.hunter.adapter import HunterProvider
from providers.models import ProviderConfig
from providers.mx_smtp.adapter import MxSmtpProvider
from providers.netrows.adapter import NetrowsProvider
from providers.pdl.adapter import PdlProvider
from providers.sandbox.adapter import SandboxProvider

# Every provider Leadsmith knows, on or off: what a run may be limited to.
PROVIDER_NAMES = tuple(
    provider.name
    for provider in (
        SandboxProvider,
        HunterProvider,
        PdlProvider,
        ApolloProvider,
        NetrowsProvider,
        MxSmtpProvider,
    )
)


def enabled_providers() -> list[Provider]:
    """Return the configured providers; one without its base URL or key is simply off."""
    providers: list[Provider] = []
    if settings.SANDBOX_BASE_URL:
        providers.append(
            SandboxProvider(settings.SANDBOX_BASE_URL, api_key=settings.SANDBOX_API_KEY)
        )
    if settings.HUNTER_API_KEY:
        providers.append(HunterProvider(settings.HUNTER_BASE_URL, settings.HUNTER_API_KEY))
    if settings.PDL_API_KEY:
        providers.append(PdlProvider(settings.PDL_BASE_URL, api_key=settings.PDL_API_KEY))
    if settings.APOLLO_API_KEY:
        providers.append(ApolloProvider(settings.APOLLO_BASE_URL, api_key=settings.APOLLO_API_KEY))
    if settings.NETROWS_API_KEY:
        providers.append(
            NetrowsProvider(settings.NETROWS_BASE_URL, api_key=settings.NETROWS_API_KEY)
        )
    if settings.SMTP_VERIFY_FROM:
        providers.append(MxSmtpProvider())
    return providers


_PROVIDER_CONFIGS = CachedTable(
    "provider_configs",
    models=(ProviderConfig,),
    load=lambda: {config.provider: config for config in ProviderConfig.objects.all()},
)


def provider_configs() -> dict[str, ProviderConfig]:
    """Each provider's settings row by provider name (a provider without one has none).
    Shared by the process: read-only."""
    return _PROVIDER_CONFIGS.get()
