"""Adapters: one folder per technology, each implementing a port of application/ports/."""
