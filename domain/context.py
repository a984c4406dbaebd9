"""What to put in front of a model for its next turn: the latest turns of the conversation and
the memories that matter, each once, rendered as plain text within a token budget.

The rules (features/context.feature):
- Nothing appears twice. A memory that is a turn of the recent window, or repeats one, is
  dropped; memories that repeat each other collapse into the best ranked of them. Two texts
  repeat each other when their normalised words (NFKC, case-folded, everything but letters and
  digits dropped) are the same, or nearly: word sets with a Jaccard index of at least
  NEAR_DUPLICATE (0.9). A text rule, not a cosine: search hands back scores, not vectors.
- The budget is never exceeded: the rendered prompt, counted by the tokenizer given, is at
  most `max_tokens` long.
- The recent turns get `recent_share` of the budget and the memories the rest; what one side
  leaves unused flows to the other.
- The newest turn is always kept, cut if it must be.
- A message longer than its room is cut at a token boundary and marked as cut (CUT_MARK).
- Memories go in best first, each whole where it fits; one too long for what is left is passed
  over for the next that fits, and the best passed over goes in last, cut to what is left.
- Each line says when (UTC, said once in the header) and who; a memory names its conversation
  when it is not the one the context is for.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from domain.message import Message
from domain.ranking import RankedMessage

NEAR_DUPLICATE = 0.9
CUT_MARK = " […]"
MIN_CUT_TOKENS = 8  # a memory cut shorter than this says nothing: it is left out instead
MEMORIES_HEADER = "Memories from earlier, most relevant first (times in UTC; from this conversation unless named):"
RECENT_HEADER = "The latest turns of this conversation, oldest first (times in UTC):"

_WORD = re.compile(r"[^\W_]+")


class CountsTokens(Protocol):
    """What the rules need of a tokenizer (application/ports/tokenizer.py's Tokenizer is one)."""

    def count(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


@dataclass(frozen=True, slots=True)
class ContextBudget:
    max_tokens: int
    recent_share: float = 0.5

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("a context budget is at least one token")
        if math.isnan(self.recent_share) or not 0.0 <= self.recent_share <= 1.0:
            raise ValueError("the recent turns' share of the budget is between 0 and 1")


@dataclass(frozen=True, slots=True)
class Entry:
    """One message as it went into the prompt."""

    message: Message
    content: str  # what of its content went in: all of it, or a prefix when cut
    line: str  # its line of the prompt
    cut: bool
    tokens: int  # of its line
    ranked: RankedMessage | None = None  # a memory: how the search ranked it
    reason: str = ""  # a memory: why it was chosen


@dataclass(frozen=True, slots=True)
class Context:
    recent: tuple[Entry, ...]
    memories: tuple[Entry, ...]
    prompt: str
    recent_tokens: int  # of the recent turns' section, header included
    memory_tokens: int  # of the memories' section, header included
    total_tokens: int  # of the whole prompt: never more than the budget
    budget: int
    repeats_dropped: int = 0  # memories left out as repeats of a recent turn or of a better memory

    def __post_init__(self) -> None:
        if self.total_tokens > self.budget:
            raise ValueError("a context never exceeds its budget")


@dataclass(frozen=True, slots=True)
class Said:
    """What a text says, for telling repeats: its normalised words, their set and its size."""

    words: tuple[str, ...]
    vocabulary: frozenset[str]
    size: int

    @classmethod
    def of(cls, text: str) -> Said:
        words = tuple(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))
        vocabulary = frozenset(words)
        return cls(words, vocabulary, len(vocabulary))


def repeats(a: Said, b: Said) -> bool:
    if a.words == b.words:
        return True
    # The index is at most the smaller set's size over the larger's: most pairs end here.
    if a.size < NEAR_DUPLICATE * b.size or b.size < NEAR_DUPLICATE * a.size or not a.size:
        return False
    return len(a.vocabulary & b.vocabulary) / len(a.vocabulary | b.vocabulary) >= NEAR_DUPLICATE


def distinct_memories(
    window: Sequence[Message], found: Sequence[RankedMessage], said: Mapping[UUID, Said]
) -> tuple[list[tuple[RankedMessage, int]], int]:
    """The found messages, best first, that are neither in nor repeats of `window` (the recent
    turns shown), nor of a better one; each with how many repeats collapsed into it. And how
    many were dropped. `said` holds what each message says, by id."""
    in_window = {m.id for m in window}
    window_said = [said[m.id] for m in window]
    kept: list[tuple[RankedMessage, Said, int]] = []
    dropped = 0
    for ranked in found:
        if ranked.message.id in in_window:
            continue  # the window shows it already: not a repeat, the same message
        this = said[ranked.message.id]
        if any(repeats(this, w) for w in window_said):
            dropped += 1
            continue
        for i, (better, better_said, collapsed) in enumerate(kept):
            if repeats(this, better_said):
                kept[i] = (better, better_said, collapsed + 1)
                dropped += 1
                break
        else:
            kept.append((ranked, this, 0))
    return [(ranked, collapsed) for ranked, _, collapsed in kept], dropped


def reason(ranked: RankedMessage, position: int, collapsed: int) -> str:
    """Why a memory was chosen, in words an operator can check against its scores."""
    found_by = [
        f"{way} rank {int(ranked.relevance[key])}"
        for way, key in (("meaning", "semantic_rank"), ("shared words", "keyword_rank"))
        if key in ranked.relevance
    ]
    s = ranked.scores
    text = f"search result {position} for the query, relevance {s.similarity:.2f}"
    text += f" ({', '.join(found_by)})" if found_by else ""
    text += f", importance {s.importance:.2f}, recency {s.recency:.2f}, final score {s.final:.2f}"
    if collapsed:
        text += f"; {collapsed} repeat{'s' if collapsed > 1 else ''} of it left out"
    return text


def stamp(message: Message) -> str:
    return message.created_at.strftime("%Y-%m-%d %H:%M")  # in UTC, as the headers say


def memory_prefix(message: Message, here: str | None) -> str:
    """A memory's line up to its content; `here` is the conversation the context is for."""
    if message.conversation_id == here:
        return recent_prefix(message)
    return f"- [{stamp(message)}, conversation {message.conversation_id}, {message.role.value}] "


def recent_prefix(message: Message) -> str:
    return f"- [{stamp(message)}, {message.role.value}] "


def fitted(prefix: str, message: Message, room: int, tokens: CountsTokens, least: int) -> Entry | None:
    """The message's line within `room` tokens (its joining newline counted): whole, or cut to
    at least `least` tokens of content; None when that does not fit."""
    line = prefix + message.content
    cost = tokens.count(line)
    if cost + 1 <= room:
        return Entry(message, message.content, line, cut=False, tokens=cost)
    frame = tokens.count(prefix) + tokens.count(CUT_MARK) + 1
    available = room - frame
    while available >= max(least, 0):
        content = tokens.truncate(message.content, available)
        line = prefix + content + CUT_MARK
        cost = tokens.count(line)
        if cost + 1 <= room and (content or least == 0):
            return Entry(message, content, line, cut=True, tokens=cost)
        available -= max(1, cost + 1 - room)
    return None


def section(header: str, entries: Sequence[Entry]) -> str:
    return "\n".join([header, *(e.line for e in entries)]) if entries else ""


def take_memories(
    memories: Sequence[tuple[RankedMessage, int]], room: int, tokens: CountsTokens, here: str | None
) -> tuple[list[Entry], int]:
    """Memories best first, each whole where it fits, passing over those that do not; then the
    best passed over, cut to what is left if that holds MIN_CUT_TOKENS of it. Listed best first,
    with the tokens spent."""
    used = tokens.count(MEMORIES_HEADER) + 2  # its newline, and the blank line before the next section
    taken: list[tuple[int, Entry]] = []
    passed_over: int | None = None
    for position, (ranked, _) in enumerate(memories, start=1):
        entry = fitted(memory_prefix(ranked.message, here), ranked.message, room - used, tokens, least=1 << 30)
        if entry is None:
            passed_over = passed_over or position
            continue
        taken.append((position, entry))
        used += entry.tokens + 1
    if passed_over is not None:
        message = memories[passed_over - 1][0].message
        entry = fitted(memory_prefix(message, here), message, room - used, tokens, MIN_CUT_TOKENS)
        if entry is not None:
            taken.append((passed_over, entry))
            used += entry.tokens + 1
    entries = []
    for position, entry in sorted(taken, key=lambda taken: taken[0]):
        ranked, collapsed = memories[position - 1]
        entries.append(_as_memory(entry, ranked, reason(ranked, position, collapsed)))
    return (entries, used) if entries else ([], 0)


def take_recent(window: Sequence[Message], room: int, tokens: CountsTokens) -> tuple[list[Entry], int]:
    """The newest turn (cut if it must be), then older ones whole while they fit: oldest first."""
    if not window:
        return [], 0
    used = tokens.count(RECENT_HEADER) + 1
    newest = fitted(recent_prefix(window[-1]), window[-1], room - used, tokens, 0)
    if newest is None:
        return [], 0
    entries, used = [newest], used + newest.tokens + 1
    for message in reversed(window[:-1]):
        entry = fitted(recent_prefix(message), message, room - used, tokens, least=1 << 30)  # whole only
        if entry is None:
            break
        entries.append(entry)
        used += entry.tokens + 1
    return entries[::-1], used


class Counted:
    """A tokenizer's counts, each text counted once: the filling measures the same lines again."""

    def __init__(self, tokens: CountsTokens) -> None:
        self._tokens = tokens
        self._counts: dict[str, int] = {}

    def count(self, text: str) -> int:
        counted = self._counts.get(text)
        if counted is None:
            counted = self._counts[text] = self._tokens.count(text)
        return counted

    def truncate(self, text: str, max_tokens: int) -> str:
        return self._tokens.truncate(text, max_tokens)


def build_context(
    window: Sequence[Message],
    found: Sequence[RankedMessage],
    budget: ContextBudget,
    tokens: CountsTokens,
    here: str | None = None,
) -> Context:
    """The context for the next turn of conversation `here` (by default the window's): `window`
    is its latest turns, oldest first; `found` what a search found, best first."""
    here = here if here is not None else (window[-1].conversation_id if window else None)
    said = {m.id: Said.of(m.content) for m in (*window, *(ranked.message for ranked in found))}
    tokens = Counted(tokens)
    size = budget.max_tokens
    memories, dropped = distinct_memories(window, found, said)
    recent_room = math.floor(size * budget.recent_share)
    if window:  # the newest turn's room: whole, or at least a few tokens of it with its frame
        newest_whole = tokens.count(RECENT_HEADER) + tokens.count(recent_prefix(window[-1]) + window[-1].content) + 2
        least = tokens.count(RECENT_HEADER) + tokens.count(recent_prefix(window[-1]) + CUT_MARK) + MIN_CUT_TOKENS + 2
        recent_room = max(recent_room, min(newest_whole, least))
        if recent_room > size:
            return _bare(window[-1], budget, tokens, dropped)
    else:
        recent_room = 0
    chosen, used = take_memories(memories, size - recent_room, tokens, here)
    recent, used_recent = take_recent(window, size - used, tokens)
    shown = [entry.message for entry in recent]
    if len(shown) < len(window):  # turns considered but not shown are memories like any other
        memories, dropped = distinct_memories(shown, found, said)
    if used_recent < size - used or len(shown) < len(window):  # what the recent turns leave flows back
        chosen, used = take_memories(memories, size - used_recent, tokens, here)
    return _within(recent, chosen, budget, tokens, dropped)


def _within(
    recent: list[Entry], memories: list[Entry], budget: ContextBudget, tokens: CountsTokens, dropped: int
) -> Context:
    """The rendered context, shrunk until the whole prompt counts within the budget: BPE counts
    of parts need not add up to the count of the whole."""
    while True:
        parts = [section(MEMORIES_HEADER, memories), section(RECENT_HEADER, recent)]
        prompt = "\n\n".join(p for p in parts if p)
        total = tokens.count(prompt)
        if total <= budget.max_tokens:
            return Context(
                recent=tuple(recent),
                memories=tuple(memories),
                prompt=prompt,
                recent_tokens=tokens.count(parts[1]),
                memory_tokens=tokens.count(parts[0]),
                total_tokens=total,
                budget=budget.max_tokens,
                repeats_dropped=dropped,
            )
        if memories:
            memories = memories[:-1]
        elif len(recent) > 1:
            recent = recent[1:]
        else:
            newest = recent[-1].message
            room = recent[-1].tokens - (total - budget.max_tokens)
            entry = fitted(recent_prefix(newest), newest, room, tokens, 0)
            if entry is None:
                return _bare(newest, budget, tokens, dropped)
            recent = [entry]


def _bare(newest: Message, budget: ContextBudget, tokens: CountsTokens, dropped: int) -> Context:
    """A budget too small for any framing: the newest turn's content alone, cut to fit."""
    content = tokens.truncate(newest.content, budget.max_tokens)
    entry = Entry(newest, content, content, cut=content != newest.content, tokens=tokens.count(content))
    return Context((entry,), (), content, entry.tokens, 0, entry.tokens, budget.max_tokens, dropped)


def _as_memory(entry: Entry, ranked: RankedMessage, why: str) -> Entry:
    return Entry(entry.message, entry.content, entry.line, entry.cut, entry.tokens, ranked, why)
