"""The ports the use cases speak to, one module per capability, each Protocol with its value
objects and the failures an adapter may report beside it.

Adapters subclass these Protocols so that mypy catches any drift.
"""
