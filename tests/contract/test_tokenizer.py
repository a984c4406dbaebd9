"""The Tokenizer port: the same assertions over the real BPE and the test fake."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.tokenizers.bpe_openai import BpeOpenAiTokenizer
from application.ports.tokenizer import Tokenizer
from tests.fakes.tokenizer import WordTokenizer

BPE = BpeOpenAiTokenizer("o200k_base")  # loading the ranks takes about a second: once per module


@pytest.fixture(params=["bpe_openai", "words"])
def tokenizer(request) -> Tokenizer:
    return BPE if request.param == "bpe_openai" else WordTokenizer()


def test_counts_grow_with_the_text(tokenizer):
    assert tokenizer.count("") == 0
    assert 1 <= tokenizer.count("hello") < tokenizer.count("hello there, how are you today?")


def test_special_token_text_is_plain_text(tokenizer):
    assert tokenizer.count("say <|endoftext|> now") >= 3


@pytest.mark.parametrize("n", [0, 1, 2, 5, 1000])
def test_truncate_keeps_a_prefix_within_the_limit(tokenizer, n):
    text = "The kettle is for green tea; flights to Lisbon leave at nine. Café 日本語 ✓"
    cut = tokenizer.truncate(text, n)
    assert text.startswith(cut)
    assert tokenizer.count(cut) <= n
    if tokenizer.count(text) <= n:
        assert cut == text
    else:
        assert cut != text


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200), n=st.integers(min_value=0, max_value=60))
def test_truncate_never_exceeds_for_any_text(text, n):
    for tokenizer in (BPE, WordTokenizer()):
        cut = tokenizer.truncate(text, n)
        assert text.startswith(cut) and tokenizer.count(cut) <= n


def test_the_real_encoding_is_named_and_unknown_ones_are_refused():
    assert BPE.name == "o200k_base"
    assert BPE.count("hello world") == 2
    with pytest.raises(ValueError, match="unknown tokenizer encoding"):
        BpeOpenAiTokenizer("no_such_base")
