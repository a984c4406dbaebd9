"""Qdrant: the vector index for deployments that keep vectors outside PostgreSQL."""
