"""Generators for checked-in files derived from one source (charts, install bundle)."""
