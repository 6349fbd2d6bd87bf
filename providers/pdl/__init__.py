"""People Data Labs (https://docs.peopledatalabs.com): person and company enrichment, v5 API."""
