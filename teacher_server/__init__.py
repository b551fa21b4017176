"""Teacher scoring of student tokens: local workers, the pool, an HTTP service and its client."""
