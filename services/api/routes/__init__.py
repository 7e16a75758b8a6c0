"""HTTP routes of the API service under `/api/v1`."""
