"""Counting and cutting text in a model's tokens: what a context's budget is spent in."""

from __future__ import annotations

from typing import Protocol


class Tokenizer(Protocol):
    """A model's tokenizer (a BPE such as o200k_base). Pure CPU, no I/O: safe to call anywhere."""

    @property
    def name(self) -> str:
        """The encoding's name, e.g. o200k_base."""
        ...

    def count(self, text: str) -> int:
        """How many tokens the text is; special-token text (`<|endoftext|>`) counts as plain text."""
        ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of the text cut at a token boundary that is at most max_tokens long
        (a character split by the cut is left out); the text itself when it fits."""
        ...
