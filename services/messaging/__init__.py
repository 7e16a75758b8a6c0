"""Event-driven ingestion: message schemas, the RabbitMQ topology, publisher and worker."""
