"""Apollo.io: people enrichment (one or ten at a time) and organization enrichment."""
