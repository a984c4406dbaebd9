"""OpenAI's BPE encodings (o200k_base, cl100k_base) through bpe-openai, which bundles its
files: nothing is downloaded at run time (tiktoken fetches them on first use)."""

from __future__ import annotations

from typing import Any

from application.ports.tokenizer import Tokenizer


class BpeOpenAiTokenizer(Tokenizer):
    def __init__(self, encoding: str = "o200k_base") -> None:
        import bpe_openai  # heavy only when chosen

        if encoding not in bpe_openai.list_encoding_names():
            raise ValueError(
                f"unknown tokenizer encoding {encoding!r}; one of {', '.join(bpe_openai.list_encoding_names())}"
            )
        self._name = encoding
        self._encoding: Any = bpe_openai.get_encoding(encoding)

    @property
    def name(self) -> str:
        return self._name

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0 or not text:
            return ""
        tokens = self._encoding.encode_ordinary(text)
        if len(tokens) <= max_tokens:
            return text
        # A cut may split a character's bytes: the partial character is left out.
        cut: str = self._encoding.decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore")
        # Decoded tokens re-encode to at most as many in practice; checked, as BPE promises nothing.
        while cut and self.count(cut) > max_tokens:
            cut = cut[:-1]
        return cut
