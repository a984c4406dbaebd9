"""Tokenizers: application/ports/tokenizer.py's Tokenizer, one module per library."""
