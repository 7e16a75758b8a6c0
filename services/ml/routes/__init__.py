"""HTTP routes of the ML service: Weaviate's inference protocol and our own `/api/v1/ml`."""
