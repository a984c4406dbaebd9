"""Embedders: sentence-transformers (default) and a deterministic one for tests."""
