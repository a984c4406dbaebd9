"""How much a message matters on its own, before any query: a score in [0, 1].

The score starts from the speaker's role, moves with a few content signals, and is
replaced outright by an importance the client states.

- Role: system messages set lasting instructions (0.6); users state their facts,
  wishes and preferences (0.5); assistants mostly restate or elaborate (0.4); tool
  output is bulky and transient (0.3).
- Memory cues (+0.2): words people use when they want something kept: "remember",
  "important", "always", "never", "my name is", "I prefer", "allergic", "deadline".
- Concrete facts (+0.05): digits (dates, amounts, versions, phone numbers).
- Substance (+0.05 from 12 words, +0.1 from 40 words): longer turns carry more facts.
- Filler (-0.2): acknowledgements such as "ok", "thanks", "sure" carry nothing to recall.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from domain.errors import FieldProblem, ValidationFailed
from domain.message import Role

ROLE_WEIGHTS: dict[Role, float] = {
    Role.SYSTEM: 0.6,
    Role.USER: 0.5,
    Role.ASSISTANT: 0.4,
    Role.TOOL: 0.3,
}

MEMORY_CUE_BONUS = 0.2
DIGIT_BONUS = 0.05
SUBSTANCE_BONUS = 0.05
LONG_SUBSTANCE_BONUS = 0.1
FILLER_PENALTY = 0.2

_MEMORY_CUES = re.compile(
    r"\b(remember|important|don'?t forget|never|always|my name is|call me|i prefer|i like|i love|"
    r"i hate|i don'?t like|allergic|deadline|birthday|password|address|must|priority)\b"
)  # matched against the lower-cased text: several times faster than re.IGNORECASE
_DIGIT = re.compile(r"\d")
_FILLER = frozenset(
    {
        "ok",
        "okay",
        "k",
        "thanks",
        "thank you",
        "thx",
        "yes",
        "no",
        "yep",
        "nope",
        "sure",
        "cool",
        "great",
        "nice",
        "got it",
        "fine",
        "alright",
        "hi",
        "hello",
        "bye",
        "lol",
    }
)


@dataclass(frozen=True, slots=True)
class ImportanceScore:
    value: float

    def __post_init__(self) -> None:
        if math.isnan(self.value) or not 0.0 <= self.value <= 1.0:
            raise ValueError(f"importance {self.value} is outside [0, 1]")


def clamp_unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def score_importance(role: Role, content: str, explicit: float | None = None) -> ImportanceScore:
    """The importance of a message; an explicit importance is clamped into [0, 1] and wins."""
    if explicit is not None:
        if math.isnan(explicit):
            raise ValidationFailed([FieldProblem("importance", "must be a number")])
        return ImportanceScore(clamp_unit(explicit))

    score = ROLE_WEIGHTS[role]
    text = content.strip()
    words = len(text.split())
    lowered = text.lower()
    if _MEMORY_CUES.search(lowered):
        score += MEMORY_CUE_BONUS
    if _DIGIT.search(text):
        score += DIGIT_BONUS
    if words >= 40:
        score += LONG_SUBSTANCE_BONUS
    elif words >= 12:
        score += SUBSTANCE_BONUS
    if lowered.strip(" .!?👍") in _FILLER:
        score -= FILLER_PENALTY
    return ImportanceScore(round(clamp_unit(score), 4))
