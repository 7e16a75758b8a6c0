"""Tests of the services (real Redis, real model)."""
