"""Integrations with third-party apps (each needs its extra: ``anonauth[allauth]``)."""
