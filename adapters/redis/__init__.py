"""Redis: the shared rate limiter."""
