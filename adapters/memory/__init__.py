"""In-process adapters: fakes for use-case tests and single-node helpers."""
