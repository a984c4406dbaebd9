"""A tokenizer for use-case tests: one token per word or punctuation mark (and per run of
spaces), so counts are easy to reckon by eye. Not a model's tokenizer: tests of the budget
over real text use adapters/tokenizers/bpe_openai.py."""

from __future__ import annotations

import re

from application.ports.tokenizer import Tokenizer

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


class WordTokenizer(Tokenizer):
    @property
    def name(self) -> str:
        return "words"

    def count(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        matches = list(_TOKEN.finditer(text))
        return text if len(matches) <= max_tokens else text[: matches[max_tokens - 1].end()]
