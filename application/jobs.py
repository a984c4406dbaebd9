"""The names of the jobs workers run; each entrypoint maps them to use cases."""

from __future__ import annotations

EMBED_PENDING = "embed_pending"
