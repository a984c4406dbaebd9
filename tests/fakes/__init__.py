"""Fakes of the ports for use-case and contract tests: in memory, deterministic, never shipped."""
