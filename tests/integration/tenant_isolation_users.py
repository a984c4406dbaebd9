"""The rules of the tenant isolation machine (test_tenant_isolation_property.py) for the routes
that reach across a tenant's conversations: a user's listing, export and erasure, and the context.

Every tenant stores messages for the same user names, so an answer that mixes up two tenants'
"u1" shows the wrong tenant's message, and an erasure that mixes them up deletes another tenant's.
The tenants, users, words and conversations the machine plays with are declared here, where
both modules can import them.
"""

import json
import uuid
from typing import Any, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import rule

TENANTS = ("acme", "globex", "initech")
USERS = ("u1", "u2")  # the same names in every tenant, on purpose
WORDS = ["vault", "code", "meeting", "budget", "paris", "flight", "doctor", "invoice", "secret", "garden"]
CONVERSATIONS = ["c1", "c2"]
SCOPES = ["conversation", "user", "tenant"]


class Machine(Protocol):
    """What these rules use of the machine."""

    users: dict[tuple[str, str], set[uuid.UUID]]  # (tenant, user): every id stored for them
    deleted: set[uuid.UUID]

    def tenant(self, name: str) -> str: ...

    def call(self, method: str, path: str, tenant: str | None, **kwargs: Any) -> tuple[int, Any]: ...

    def check(self, tenant: str, messages: list[dict[str, Any]]) -> None: ...


def alive(machine: Machine, tenant: str, user: str) -> set[uuid.UUID]:
    return machine.users[tenant, user] - machine.deleted


def user_listing(machine: Machine, tenant: str, user: str, limit: int = 200) -> set[uuid.UUID]:
    """Every message the user route lists, archived ones too, page by page, each checked."""
    listed: set[uuid.UUID] = set()
    cursor = None
    while True:
        query = {"tenant_id": machine.tenant(tenant), "include_archived": "true", "limit": limit}
        if cursor:
            query["cursor"] = cursor
        status, page = machine.call("get", f"/v1/users/{user}/messages", tenant, query_string=query)
        assert status == 200, page
        machine.check(tenant, page["messages"])
        assert all(m["user_id"] == user for m in page["messages"]), page
        listed.update(uuid.UUID(m["id"]) for m in page["messages"])
        cursor = page["next_cursor"]
        if not cursor:
            return listed


class UserAndContextRules:
    """Mixed into TenantIsolation: each rule reads the machine's model through `Machine`."""

    @rule(tenant=st.sampled_from(TENANTS), user=st.sampled_from(USERS), limit=st.sampled_from([1, 2, 50]))
    def list_user(self: Machine, tenant: str, user: str, limit: int) -> None:
        assert user_listing(self, tenant, user, limit) == alive(self, tenant, user)

    @rule(tenant=st.sampled_from(TENANTS), user=st.sampled_from(USERS))
    def export_user(self: Machine, tenant: str, user: str) -> None:
        query = {"tenant_id": self.tenant(tenant)}
        status, body = self.call("get", f"/v1/users/{user}/export", tenant, query_string=query)
        assert status == 200, body
        lines = [json.loads(line) for line in body.splitlines()]
        self.check(tenant, lines)
        assert all(m["user_id"] == user for m in lines), body
        assert {uuid.UUID(m["id"]) for m in lines} == alive(self, tenant, user)

    @rule(tenant=st.sampled_from(TENANTS), user=st.sampled_from(USERS))
    def erase_user(self: Machine, tenant: str, user: str) -> None:
        erased = alive(self, tenant, user)
        status, answer = self.call(
            "delete", f"/v1/users/{user}", tenant, query_string={"tenant_id": self.tenant(tenant)}
        )
        assert status == 200, answer
        assert answer["deleted"]["messages"] == len(erased), answer  # more would be another tenant's
        self.deleted |= erased
        assert user_listing(self, tenant, user) == set()
        for other in TENANTS:  # the same user name elsewhere is another person, untouched
            if other != tenant:
                assert user_listing(self, other, user) == alive(self, other, user), f"{other}'s {user}"

    @rule(
        tenant=st.sampled_from(TENANTS),
        conversation=st.sampled_from(CONVERSATIONS),
        words=st.lists(st.sampled_from(WORDS), max_size=3),
        user=st.sampled_from([None, *USERS]),
        scope=st.sampled_from([None, *SCOPES]),
    )
    def context(
        self: Machine, tenant: str, conversation: str, words: list[str], user: str | None, scope: str | None
    ) -> None:
        body: dict[str, Any] = {"tenant_id": self.tenant(tenant), "conversation_id": conversation, "max_tokens": 2000}
        body |= {k: v for k, v in {"query": " ".join(words), "user_id": user, "scope": scope}.items() if v}
        status, answer = self.call("post", "/v1/context", tenant, json=body)
        drawn_from = scope or ("user" if user else "conversation")
        if drawn_from == "user" and user is None:
            assert status == 422, answer  # whose memories to draw on
            return
        assert status == 200, answer
        recent = [e["message"] for e in answer["recent"]]
        memories = [e["message"] for e in answer["memories"]]
        self.check(tenant, recent + memories)
        assert all(m["conversation_id"] == conversation for m in recent), answer
        if drawn_from == "user" and user is not None:  # only that person's messages
            assert all(uuid.UUID(m["id"]) in self.users[tenant, user] for m in memories), answer
        if drawn_from == "conversation":
            assert all(m["conversation_id"] == conversation for m in memories), answer

    @rule(pair=st.permutations(TENANTS), user=st.sampled_from(USERS))
    def trespass(self: Machine, pair: list[str], user: str) -> None:
        """A tenant's key naming another tenant is refused on every route, and erases nothing."""
        reader, owner = pair[:2]
        named = {"tenant_id": self.tenant(owner)}
        for method, path in [
            ("get", f"/v1/users/{user}/messages"),
            ("get", f"/v1/users/{user}/export"),
            ("delete", f"/v1/users/{user}"),
        ]:
            status, answer = self.call(method, path, reader, query_string=named)
            assert status == 403, (method, path, answer)
        body = named | {"conversation_id": "c1", "max_tokens": 2000, "user_id": user, "scope": "tenant"}
        status, answer = self.call("post", "/v1/context", reader, json=body)
        assert status == 403, answer
        assert user_listing(self, owner, user) == alive(self, owner, user)
