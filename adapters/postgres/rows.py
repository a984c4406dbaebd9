"""The messages table's columns, and a row of them as a Message: what every query of messages shares."""

from __future__ import annotations

import asyncpg

from adapters.postgres.instants import aware, aware_or_none
from domain.message import EmbeddingStatus, Message, Role

MESSAGE_COLUMNS = (
    "id, tenant_id, conversation_id, role, content, metadata, created_at, importance, "
    "explicit_importance, embedding_status, archived_at, client_message_id, embedding_error, pinned, restored_at, "
    "user_id"
)

# MESSAGE_COLUMNS of the row aliased m (in an UPDATE ... FROM, a bare name may be ambiguous).
M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))


def to_message(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        tenant_id=row["tenant_id"],
        conversation_id=row["conversation_id"],
        role=Role(row["role"]),
        content=row["content"],
        metadata=row["metadata"],
        created_at=aware(row["created_at"]),
        importance=row["importance"],
        explicit_importance=row["explicit_importance"],
        embedding_status=EmbeddingStatus(row["embedding_status"]),
        archived_at=aware_or_none(row["archived_at"]),
        client_message_id=row["client_message_id"],
        embedding_error=row["embedding_error"],
        pinned=row["pinned"],
        restored_at=aware_or_none(row["restored_at"]),
        user_id=row["user_id"],
    )
