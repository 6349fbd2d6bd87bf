"""Netrows: professional-profile lookups by LinkedIn URL or email."""
