"""arq on Redis: the JobQueue adapter for worker processes."""
