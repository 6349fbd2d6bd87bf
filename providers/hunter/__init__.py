"""Hunter (hunter.io) API v2: email finder, email verifier and domain search."""
