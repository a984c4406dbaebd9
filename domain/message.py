"""The message a conversation stores, and the rules a new one must satisfy."""

from __future__ import annotations

import enum
import json
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import FieldProblem, ValidationFailed
from domain.instant import in_utc, instant_problem

# Ids travel in URLs, logs and filters: keep them to a plain ASCII charset so that no
# unicode look-alike or normalisation trick can name two tenants the same way.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit"


class Role(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class EmbeddingStatus(enum.StrEnum):
    PENDING = "pending"
    EMBEDDED = "embedded"
    FAILED = "failed"


MAX_METADATA_DEPTH = 16


@dataclass(frozen=True, slots=True)
class ContentLimits:
    max_content_chars: int = 32_000
    max_metadata_bytes: int = 16_384  # the metadata object as compact JSON, in UTF-8


def json_size(value: object) -> int:
    """Bytes of a JSON value written compactly in UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def text_problem(field_name: str, text: str) -> FieldProblem | None:
    """Text PostgreSQL cannot store: NUL characters, or lone UTF-16 surrogates."""
    if "\x00" in text:
        return FieldProblem(field_name, "must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return FieldProblem(field_name, "must be valid Unicode (it holds a lone surrogate)")
    return None


def metadata_problem(value: object, path: str = "metadata", depth: int = 0) -> FieldProblem | None:
    if depth > MAX_METADATA_DEPTH:
        return FieldProblem("metadata", f"nests deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        return text_problem(path, value)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(f"{path} key", str(key)) or metadata_problem(item, f"{path}.{key}", depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = metadata_problem(item, f"{path}[{index}]", depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, float) and not math.isfinite(value):  # NaN and infinities have no JSON form
        return FieldProblem(path, "must be a finite number")
    return None


def id_problem(field_name: str, value: object) -> FieldProblem | None:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        return FieldProblem(field_name, f"must be {ID_RULE}")
    return None


def check_id(field_name: str, value: object) -> None:
    problem = id_problem(field_name, value)
    if problem is not None:
        raise ValidationFailed([problem])


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as a client offers it, checked against the domain rules."""

    tenant_id: str
    conversation_id: str
    role: Role
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    explicit_importance: float | None = None
    created_at: datetime | None = None
    client_message_id: str | None = None
    pinned: bool = False
    user_id: str | None = None  # the person the message is about, inside the tenant

    @classmethod
    def parse(
        cls,
        *,
        tenant_id: object,
        conversation_id: object,
        role: object,
        content: object,
        metadata: dict[str, Any] | None = None,
        explicit_importance: float | None = None,
        created_at: datetime | None = None,
        client_message_id: object = None,
        pinned: bool = False,
        user_id: object = None,
        limits: ContentLimits = ContentLimits(),
    ) -> NewMessage:
        """Check every rule and report every broken one at once."""
        problems = [
            p
            for p in (id_problem("tenant_id", tenant_id), id_problem("conversation_id", conversation_id))
            if p is not None
        ]
        try:
            parsed_role = Role(str(role))
        except ValueError:
            problems.append(FieldProblem("role", f"must be one of {', '.join(r.value for r in Role)}"))
        if not isinstance(content, str) or not content.strip():
            problems.append(FieldProblem("content", "must not be empty"))
        elif len(content) > limits.max_content_chars:
            problems.append(
                FieldProblem("content", f"is {len(content)} characters; the limit is {limits.max_content_chars}")
            )
        elif (problem := text_problem("content", content)) is not None:
            problems.append(problem)
        if metadata is not None and not isinstance(metadata, dict):
            problems.append(FieldProblem("metadata", "must be a JSON object"))
        elif (problem := metadata_problem(metadata or {})) is not None:
            problems.append(problem)
        elif (size := json_size(metadata or {})) > limits.max_metadata_bytes:
            problems.append(
                FieldProblem("metadata", f"is {size} bytes as JSON; the limit is {limits.max_metadata_bytes}")
            )
        if (problem := instant_problem("created_at", created_at)) is not None:
            problems.append(problem)
        if client_message_id is not None and (problem := id_problem("client_message_id", client_message_id)):
            problems.append(problem)
        if user_id is not None and (problem := id_problem("user_id", user_id)):
            problems.append(problem)
        if problems:
            raise ValidationFailed(problems)
        return cls(
            tenant_id=str(tenant_id),
            conversation_id=str(conversation_id),
            role=parsed_role,
            content=str(content),
            metadata=dict(metadata or {}),
            explicit_importance=explicit_importance,
            created_at=None if created_at is None else in_utc(created_at),
            client_message_id=None if client_message_id is None else str(client_message_id),
            pinned=pinned,
            user_id=None if user_id is None else str(user_id),
        )

    def differences(self, stored: Message) -> list[str]:
        """The fields, by their API names, in which a stored message is not this one sent
        again. A retry under the same client_message_id is a replay only when there are none:
        everything the client said counts (metadata as JSON, so 7 is 7.0), and created_at
        when the retry gives one (without it, the time the first request was stored stands)."""
        checks: list[tuple[str, bool]] = [
            ("tenant_id", stored.tenant_id == self.tenant_id),
            ("conversation_id", stored.conversation_id == self.conversation_id),
            ("role", stored.role == self.role),
            ("content", stored.content == self.content),
            ("metadata", same_json(stored.metadata, self.metadata)),
            ("importance", stored.explicit_importance == self.explicit_importance),
            ("pinned", stored.pinned == self.pinned),
            ("user_id", stored.user_id == self.user_id),
            ("created_at", self.created_at is None or stored.created_at == self.created_at),
        ]
        return [name for name, same in checks if not same]


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message: the system of record's row."""

    id: uuid.UUID
    tenant_id: str
    conversation_id: str
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: datetime
    importance: float
    explicit_importance: float | None
    embedding_status: EmbeddingStatus
    archived_at: datetime | None = None
    client_message_id: str | None = None
    embedding_error: str | None = None  # why embedding failed, once it has
    pinned: bool = False  # retention keeps it, whatever its age
    restored_at: datetime | None = None  # last brought back from the archive
    user_id: str | None = None  # the person the message is about, inside the tenant

    @property
    def is_pinned(self) -> bool:
        """Pinned, or given the highest importance: retention always keeps it."""
        return self.pinned or self.explicit_importance == 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.importance <= 1.0:
            raise ValueError(f"importance {self.importance} is outside [0, 1]")


# What a message's fields other than its content and metadata take in a JSON answer, about.
MESSAGE_FIELDS_BYTES = 600


def answer_size(message: Message) -> int:
    """About how many bytes a message takes in a JSON answer."""
    return len(json.dumps(message.content)) + len(json.dumps(message.metadata)) + MESSAGE_FIELDS_BYTES


def fitting(messages: Sequence[Message], budget_bytes: int) -> int:
    """How many of the first messages fit in an answer of budget_bytes; at least one, so that
    any message can be read."""
    used = 0
    for count, message in enumerate(messages):
        used += answer_size(message)
        if used > budget_bytes:
            return max(1, count)
    return len(messages)


def metadata_contains(metadata: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    """JSON containment, as PostgreSQL's @>: every key of `wanted` holds a value contained in ours."""
    if not wanted:
        return True
    return all(key in metadata and _contained(value, metadata[key]) for key, value in wanted.items())


def same_json(a: Any, b: Any) -> bool:
    """JSON equality, as PostgreSQL's jsonb =: objects by keys, arrays in order, numbers by value."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return _same_scalar(a, b)


def _contained(wanted: Any, value: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(value, dict) and metadata_contains(value, wanted)
    if isinstance(wanted, list):
        return isinstance(value, list) and all(any(_contained(w, v) for v in value) for w in wanted)
    return _same_scalar(wanted, value)


def _same_scalar(a: Any, b: Any) -> bool:
    """Numbers by value (100 is 100.0); anything else by type and value (true is not 1)."""
    number_a, number_b = _json_number(a), _json_number(b)
    if number_a is not None or number_b is not None:
        return number_a == number_b
    return type(a) is type(b) and bool(a == b)


def _json_number(value: Any) -> Decimal | None:
    """A number's value as PostgreSQL reads it: the decimal its JSON text says (a float is
    sent as its shortest repr, so 1e23 is 10**23 there, not the binary float's value).
    None for anything else, bool included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
