"""The service stack on loopback (`python -m tests.stack up|down`) and its Weaviate runner."""
