"""Random interleavings of every kind of call, over several tenants, on the real HTTP app and
a real PostgreSQL: no answer to one tenant ever holds another tenant's message.

Hypothesis drives a state machine: stores (one and batch, some for a user), searches in every
mode, edits, deletions, conversation erasures, retention runs, reads by id, and the user and
context routes (tenant_isolation_users.py). After each read the machine checks every message in
the answer against what it knows each tenant stored.
A failing interleaving is shrunk to the shortest one that still leaks, and printed.
"""

import asyncio
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from config.container import Container
from config.settings import Settings
from entrypoints.http.app import create_app
from tests.conftest import DIMENSIONS
from tests.fakes.embedder import DeterministicEmbedder
from tests.integration.tenant_isolation_users import CONVERSATIONS, TENANTS, USERS, WORDS, UserAndContextRules

ADMIN_KEY = "property-admin-key-000001"
KEYS = {t: f"property-{t}-key-0000001" for t in TENANTS}


def headers(tenant: str | None) -> dict[str, str]:
    return {"x-api-key": KEYS[tenant] if tenant else ADMIN_KEY}


class TenantIsolation(UserAndContextRules, RuleBasedStateMachine):
    """One app and one database per run; tenant names unique per run, so runs share the server."""

    dsn: str = ""
    data_dir: str = ""
    messages = Bundle("messages")

    def __init__(self) -> None:
        super().__init__()
        self.run = uuid.uuid4().hex[:8]
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self.stored: dict[str, set[uuid.UUID]] = {t: set() for t in TENANTS}  # every id each tenant was given
        self.users: dict[tuple[str, str], set[uuid.UUID]] = {(t, u): set() for t in TENANTS for u in USERS}
        self.deleted: set[uuid.UUID] = set()
        self.reads = 0
        self.client = self.loop.run_until_complete(self._start())

    def tenant(self, name: str) -> str:
        return f"{name}-{self.run}"

    async def _start(self) -> Any:
        settings_ = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=self.dsn,
            data_dir=Path(self.data_dir),
            admin_api_keys=ADMIN_KEY,
            api_keys=",".join(f"{KEYS[t]}:{self.tenant(t)}" for t in TENANTS),
            embedding_mode="inline",
            retention_schedule_seconds=0,
            query_cache_size=0,
        )
        container = Container(settings=settings_)
        container.embedder.override(providers.Object(DeterministicEmbedder(DIMENSIONS)))
        app = create_app(container, on_admin_key=lambda key: None)
        test_app = app.test_app()
        await test_app.startup()
        self.stack.push_async_callback(test_app.shutdown)
        client = test_app.test_client()
        for name in TENANTS:  # everything a day old is archived, two days old deleted, whatever its importance
            policy = {"archive_after_days": 1, "delete_after_days": 2, "importance_threshold": 1.0}
            response = await client.put(
                f"/v1/admin/tenants/{self.tenant(name)}/retention", json=policy, headers=headers(None)
            )
            assert response.status_code == 200, await response.get_data(as_text=True)
        return client

    def teardown(self) -> None:
        self.loop.run_until_complete(self.stack.aclose())
        self.loop.close()

    def call(self, method: str, path: str, tenant: str | None, **kwargs: Any) -> tuple[int, Any]:
        async def go() -> tuple[int, Any]:
            response = await getattr(self.client, method)(path, headers=headers(tenant), **kwargs)
            if response.is_json:
                return response.status_code, await response.get_json()
            return response.status_code, await response.get_data(as_text=True)  # NDJSON, or nothing

        return self.loop.run_until_complete(go())

    def check(self, tenant: str, messages: list[dict[str, Any]]) -> None:
        """The heart of it: every message shown to `tenant` is one `tenant` stored, and alive."""
        self.reads += 1
        for message in messages:
            message_id = uuid.UUID(message["id"])
            assert message["tenant_id"] == self.tenant(tenant), f"{tenant} was shown {message}"
            assert message_id in self.stored[tenant], f"{tenant} was shown a message it never stored: {message}"
            assert message_id not in self.deleted, f"{tenant} was shown a deleted message: {message}"
            assert message["content"].startswith(f"[{tenant}]")

    def content(self, tenant: str, words: list[str]) -> str:
        return f"[{tenant}] " + " ".join(words)

    @rule(
        target=messages,
        tenant=st.sampled_from(TENANTS),
        conversation=st.sampled_from(CONVERSATIONS),
        words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
        days_ago=st.sampled_from([0, 0, 1.5, 3]),
        user=st.sampled_from([None, *USERS]),
    )
    def store(
        self, tenant: str, conversation: str, words: list[str], days_ago: float, user: str | None
    ) -> tuple[str, uuid.UUID]:
        created_at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
        body = {
            "tenant_id": self.tenant(tenant),
            "conversation_id": conversation,
            "role": "user",
            "content": self.content(tenant, words),
            "created_at": created_at,
            "user_id": user,
        }
        status, answer = self.call("post", "/v1/messages", tenant, json=body)
        assert status == 201, answer
        self.stored[tenant].add(uuid.UUID(answer["id"]))
        if user:
            self.users[tenant, user].add(uuid.UUID(answer["id"]))
        return tenant, uuid.UUID(answer["id"])

    @rule(
        tenant=st.sampled_from(TENANTS),
        batch=st.lists(st.lists(st.sampled_from(WORDS), min_size=1), max_size=3),
        user=st.sampled_from([None, *USERS]),
    )
    def store_batch(self, tenant: str, batch: list[list[str]], user: str | None) -> None:
        messages = [
            {
                "tenant_id": self.tenant(tenant),
                "conversation_id": "c1",
                "role": "user",
                "content": self.content(tenant, w),
                "user_id": user,
            }
            for w in batch
        ]
        status, answer = self.call("post", "/v1/messages/batch", tenant, json={"messages": messages})
        if not batch:
            assert status == 422, answer
            return
        assert status in (201, 202), answer
        self.stored[tenant].update(uuid.UUID(m["id"]) for m in answer["messages"])
        if user:
            self.users[tenant, user].update(uuid.UUID(m["id"]) for m in answer["messages"])

    @rule(
        tenant=st.sampled_from(TENANTS),
        words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
        mode=st.sampled_from(["semantic", "keyword", "hybrid"]),
        conversation=st.sampled_from([None, *CONVERSATIONS]),
    )
    def search(self, tenant: str, words: list[str], mode: str, conversation: str | None) -> None:
        query = {"tenant_id": self.tenant(tenant), "query": " ".join(words), "top_k": 50, "mode": mode}
        if conversation:
            query["conversation_id"] = conversation
        status, answer = self.call("get", "/v1/memory/search", tenant, query_string=query)
        assert status == 200, answer
        self.check(tenant, [r["message"] for r in answer["results"]])

    @rule(tenant=st.sampled_from(TENANTS), conversation=st.sampled_from(CONVERSATIONS))
    def list_conversation(self, tenant: str, conversation: str) -> None:
        status, answer = self.call(
            "get", f"/v1/conversations/{conversation}/messages", tenant, query_string={"tenant_id": self.tenant(tenant)}
        )
        assert status == 200, answer
        self.check(tenant, answer["messages"])

    @rule(reader=st.sampled_from(TENANTS), target_=messages)
    def get(self, reader: str, target_: tuple[str, uuid.UUID]) -> None:
        owner, message_id = target_
        status, answer = self.call(
            "get", f"/v1/messages/{message_id}", reader, query_string={"tenant_id": self.tenant(reader)}
        )
        if reader == owner and message_id not in self.deleted:
            assert status == 200, answer
            self.check(reader, [answer])
        else:
            assert status == 404, answer  # another tenant's id is as unknown as a deleted one
        status, answer = self.call(
            "get", f"/v1/messages/{message_id}", reader, query_string={"tenant_id": self.tenant(owner)}
        )
        assert status == (403 if reader != owner else 200 if message_id not in self.deleted else 404), answer

    @rule(editor=st.sampled_from(TENANTS), target_=messages, words=st.lists(st.sampled_from(WORDS), min_size=1))
    def edit(self, editor: str, target_: tuple[str, uuid.UUID], words: list[str]) -> None:
        owner, message_id = target_
        status, answer = self.call(
            "patch",
            f"/v1/messages/{message_id}",
            editor,
            query_string={"tenant_id": self.tenant(editor)},
            json={"content": self.content(editor, words)},
        )
        if editor == owner and message_id not in self.deleted:
            assert status in (200, 404), answer  # 404: retention deleted it meanwhile
            if status == 404:
                self.deleted.add(message_id)
        else:
            assert status == 404, answer  # never an edit of another tenant's message

    @rule(deleter=st.sampled_from(TENANTS), target_=messages)
    def delete(self, deleter: str, target_: tuple[str, uuid.UUID]) -> None:
        owner, message_id = target_
        status, answer = self.call(
            "delete", f"/v1/messages/{message_id}", deleter, query_string={"tenant_id": self.tenant(deleter)}
        )
        if deleter == owner:
            assert status in (204, 404), answer
            self.deleted.add(message_id)
        else:
            assert status == 404, answer

    @rule(tenant=st.sampled_from(TENANTS), conversation=st.sampled_from(CONVERSATIONS))
    def erase_conversation(self, tenant: str, conversation: str) -> None:
        status, answer = self.call(
            "delete", f"/v1/conversations/{conversation}", tenant, query_string={"tenant_id": self.tenant(tenant)}
        )
        assert status == 200, answer
        status, remaining = self.call(
            "get", f"/v1/conversations/{conversation}/messages", tenant, query_string={"tenant_id": self.tenant(tenant)}
        )
        assert status == 200 and remaining["messages"] == [], remaining
        # What went is whatever this tenant had there: learn it from what is still listed elsewhere.
        self._forget_unlisted(tenant)

    @rule(tenant=st.sampled_from([None, *TENANTS]))
    def retention_run(self, tenant: str | None) -> None:
        body = {"tenant_id": self.tenant(tenant)} if tenant else {}
        status, answer = self.call("post", "/v1/admin/retention/run", None, json=body)
        assert status in (200, 409), answer
        for name in TENANTS:
            self._forget_unlisted(name)

    def _forget_unlisted(self, tenant: str) -> None:
        """Messages no longer in any of the tenant's conversations (erased, deleted by retention)."""
        listed: set[uuid.UUID] = set()
        for conversation in CONVERSATIONS:
            cursor = None
            while True:
                query = {"tenant_id": self.tenant(tenant), "include_archived": "true", "limit": 200}
                if cursor:
                    query["cursor"] = cursor
                status, page = self.call(
                    "get", f"/v1/conversations/{conversation}/messages", tenant, query_string=query
                )
                assert status == 200, page
                self.check(tenant, [m for m in page["messages"] if uuid.UUID(m["id"]) not in self.deleted])
                listed.update(uuid.UUID(m["id"]) for m in page["messages"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
        self.deleted |= self.stored[tenant] - listed

    @invariant()
    def tenants_never_share_an_id(self) -> None:
        acme, globex, initech = (self.stored[t] for t in TENANTS)
        assert not (acme & globex or acme & initech or globex & initech)


@pytest.fixture
def isolation_machine(database_url: str, tmp_path: Path) -> type[TenantIsolation]:
    TenantIsolation.dsn = database_url  # a database of its own: it records its own model
    TenantIsolation.data_dir = str(tmp_path)
    return TenantIsolation


def test_no_interleaving_shows_a_tenant_another_tenants_message(isolation_machine: type[TenantIsolation]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        isolation_machine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,  # the same interleavings in every run: CI is reproducible
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
