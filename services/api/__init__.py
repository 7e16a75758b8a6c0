"""API service: document ingestion into Weaviate, semantic search, jobs, cached responses."""
