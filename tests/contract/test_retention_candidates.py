"""What every RetentionCandidates promises: the messages a retention policy may act on, page by page."""

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from application.ports.messages import Position
from domain.message import Role
from domain.retention import RetentionAction, RetentionFacts, RetentionPolicy, decide
from tests.support import make, tenant

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def varied_messages(t: str) -> list:
    """Every combination the rule distinguishes: age, importance, pinned, role, archived, restored."""
    messages = []
    for age, importance, pinned, explicit, role, archived, restored in itertools.product(
        (5, 45, 120),
        (0.1, 0.5),
        (False, True),
        (None, 1.0),
        (Role.USER, Role.SYSTEM),
        (False, True),
        (None, 2, 60),
    ):
        messages.append(
            make(
                t,
                created_at=NOW - timedelta(days=age),
                importance=importance if explicit is None else explicit,
                explicit_importance=explicit,
                pinned=pinned,
                role=role,
                archived_at=NOW - timedelta(days=1) if archived else None,
            )
        )
        messages[-1] = replace(messages[-1], restored_at=None if restored is None else NOW - timedelta(days=restored))
    return messages


async def test_retention_candidates_are_what_the_rule_acts_on_page_by_page(backend):
    t = tenant()
    policy = RetentionPolicy(
        archive_after_days=30, delete_after_days=90, importance_threshold=0.35, protected_roles=frozenset({Role.SYSTEM})
    )
    messages = varied_messages(t)
    for message in messages:
        await backend.messages.add(message)
        if message.restored_at is not None:  # restored_at is written by a restore, not by add
            await backend.messages.archive(t, [message.id], NOW)
            await backend.messages.restore(t, [message.id], message.restored_at)
            if message.archived_at is not None:
                await backend.messages.archive(t, [message.id], message.archived_at)
    stored = [await backend.messages.get(t, m.id) for m in messages]
    acted_on = {m.id for m in stored if decide(policy, RetentionFacts.of(m), NOW).action != RetentionAction.KEEP}
    assert acted_on  # the table holds messages to archive and to delete
    assert {decide(policy, RetentionFacts.of(m), NOW).action for m in stored} == set(RetentionAction)

    seen, after = [], None
    while page := await backend.retention.retention_candidates(t, policy, NOW, after, 7):
        seen += page
        after = Position(page[-1].created_at, page[-1].message_id)

    assert [f.message_id for f in seen] == [
        f.message_id for f in sorted(seen, key=lambda f: (f.created_at, f.message_id))
    ]
    assert {f.message_id for f in seen} == acted_on
    assert await backend.retention.count_retention_candidates(t, policy, NOW) == len(acted_on)
    assert await backend.retention.retention_candidates(tenant(), policy, NOW, None, 7) == []


async def test_a_policy_that_never_acts_has_no_candidates(backend):
    t = tenant()
    await backend.messages.add(make(t, created_at=NOW - timedelta(days=5000), importance=0.0))
    never = RetentionPolicy(archive_after_days=None, delete_after_days=None)
    assert await backend.retention.retention_candidates(t, never, NOW, None, 10) == []
    assert await backend.retention.count_retention_candidates(t, never, NOW) == 0
