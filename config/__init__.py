"""Settings and the one composition root."""
