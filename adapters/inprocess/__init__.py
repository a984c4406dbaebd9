"""In-process adapters that production runs: the job queue of a single API process, its query
cache and its rate limiter (without Redis)."""
