"""IndexForge services: API, ML inference and Excel processor, plus their shared code."""
