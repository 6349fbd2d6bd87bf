from tests.enrichment.conftest import enrich_now  # noqa: F401  (the same fixture here)
