"""Embedders: sentence-transformers (default) and Google Gemini."""
