"""Change a stored message: metadata, importance, pinned, or its content (which re-embeds it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from application.errors import NotFound
from application.jobs import EMBED_PENDING
from application.ports.embedder import Embedder
from application.ports.job_queue import JobQueue
from application.ports.messages import MessageRepository
from application.ports.storage import Transactions
from application.ports.vectors import VectorIndex
from application.store_messages import EmbeddingMode, StoreSettings, embedding_text, vector_record
from domain.access import Principal
from domain.errors import FieldProblem, ValidationFailed
from domain.importance import score_importance
from domain.message import EmbeddingStatus, Message, NewMessage, check_id


@dataclass(frozen=True, slots=True)
class MessagePatch:
    """None leaves a field as it is; clear_importance drops an explicit importance (the
    computed score applies again), clear_user_id the user."""

    content: str | None = None
    metadata: dict[str, Any] | None = None
    importance: float | None = None
    clear_importance: bool = False
    pinned: bool | None = None
    user_id: str | None = None
    clear_user_id: bool = False

    def is_empty(self) -> bool:
        return self == MessagePatch()


class UpdateMessage:
    def __init__(
        self,
        messages: MessageRepository,
        index: VectorIndex,
        embedder: Embedder,
        transactions: Transactions,
        queue: JobQueue,
        settings: StoreSettings,
    ) -> None:
        self._messages = messages
        self._index = index
        self._embedder = embedder
        self._transactions = transactions
        self._queue = queue
        self._settings = settings

    async def __call__(
        self, principal: Principal, tenant_id: str, message_id: uuid.UUID, patch: MessagePatch
    ) -> Message:
        check_id("tenant_id", tenant_id)
        principal.require_tenant(tenant_id)
        if patch.is_empty():
            raise ValidationFailed([FieldProblem("body", "names nothing to change")])
        if patch.clear_importance and patch.importance is not None:
            raise ValidationFailed([FieldProblem("importance", "cannot be both set and cleared")])
        if patch.clear_user_id and patch.user_id is not None:
            raise ValidationFailed([FieldProblem("user_id", "cannot be both set and cleared")])
        inline = self._settings.mode == EmbeddingMode.INLINE
        # Read and write under the row's lock: a concurrent PATCH, restore, retention run or
        # embedding worker waits, so none of their changes is written over with a stale copy.
        async with self._transactions.begin():
            found = await self._messages.lock(tenant_id, [message_id])
            if not found:
                raise NotFound(f"no message {message_id} in tenant '{tenant_id}'")
            current = found[0]
            changed = self._changed(current, patch)
            reembed = changed.content != current.content
            if changed.user_id != current.user_id and current.embedding_status == EmbeddingStatus.EMBEDDED:
                # An index that keeps filter fields beside the vector (Qdrant) learns the new user.
                await self._index.set_fields(tenant_id, [message_id], user_id=changed.user_id)
            if not reembed:
                if changed.importance != current.importance and current.embedding_status == EmbeddingStatus.EMBEDDED:
                    # An index that keeps filter fields beside the vector (Qdrant) learns the new importance.
                    await self._index.set_fields(tenant_id, [message_id], importance=changed.importance)
                updated = await self._write(changed, reembed=False)
            elif inline:
                (vector,) = await self._embedder.embed_documents([embedding_text(changed)])
                updated = await self._write(replace(changed, embedding_status=EmbeddingStatus.EMBEDDED), reembed=True)
                await self._index.upsert([vector_record(updated, vector)])
            else:
                updated = await self._write(replace(changed, embedding_status=EmbeddingStatus.PENDING), reembed=True)
        if reembed and not inline:
            self._queue.submit(EMBED_PENDING)  # after the commit, so a worker sees the new text
        return updated

    def _changed(self, current: Message, patch: MessagePatch) -> Message:
        """The message with the patch applied, checked by the rules a new message must meet."""
        explicit = None if patch.clear_importance else patch.importance
        if explicit is None and not patch.clear_importance:
            explicit = current.explicit_importance
        checked = NewMessage.parse(
            tenant_id=current.tenant_id,
            conversation_id=current.conversation_id,
            role=current.role.value,
            content=current.content if patch.content is None else patch.content,
            metadata=current.metadata if patch.metadata is None else patch.metadata,
            explicit_importance=explicit,
            user_id=None if patch.clear_user_id else current.user_id if patch.user_id is None else patch.user_id,
            limits=self._settings.limits,
        )
        return replace(
            current,
            content=checked.content,
            metadata=checked.metadata,
            explicit_importance=explicit,
            importance=score_importance(checked.role, checked.content, explicit).value,
            pinned=current.pinned if patch.pinned is None else patch.pinned,
            user_id=checked.user_id,
        )

    async def _write(self, message: Message, *, reembed: bool) -> Message:
        updated = await self._messages.update(message, reembed=reembed)
        assert updated is not None  # the row is locked: it cannot have gone
        return updated
