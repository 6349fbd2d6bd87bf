from django.apps import AppConfig


class EnrichmentConfig(AppConfig):
    name = "enrichment"
    verbose_name = "Enrichment"

    def ready(self) -> None:
        from enrichment import receivers, run_waits  # noqa: F401  (connect their receivers)
