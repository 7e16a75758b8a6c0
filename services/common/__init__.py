"""Code shared by the IndexForge services: settings, logging, metrics, tracing, Sentry,
the Redis cache, health checks and the FastAPI application factory.

Each module owns one concern; services compose them through `app.create_service_app`.
"""
