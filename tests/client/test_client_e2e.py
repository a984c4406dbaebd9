"""The client against the real server process (embedded PostgreSQL + pgvector, the real model):
every call a user makes, the problems it raises, and one method for every operation the
server's /openapi.json documents."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from memorymesh_client import (
    OPERATIONS,
    AsyncMemoryMesh,
    Forbidden,
    MemoryMesh,
    NotFound,
    Unauthorized,
    ValidationError,
    message_fields,
)

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-admin-key-000000000021"
ACME_KEY = "e2e-acme-key-0000000000021"
GLOBEX_KEY = "e2e-globex-key-00000000021"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("client-e2e") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme,{GLOBEX_KEY}:globex",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture
def acme(server: ServerProcess) -> Iterator[MemoryMesh]:
    with MemoryMesh(server.url, ACME_KEY) as memory:
        yield memory


def test_store_get_search_list_and_context(acme: MemoryMesh) -> None:
    stored = acme.store_message(
        "acme", "trip", "user", "My son is allergic to peanuts.", user_id="alice", metadata={"src": "chat"}, wait=True
    )
    assert stored["embedding_status"] == "embedded" and stored["user_id"] == "alice"
    assert acme.get_message("acme", stored["id"]) == stored

    batch = acme.store_messages(
        [message_fields("acme", "trip", "assistant", f"Noted, turn {i}: no peanuts.") for i in range(7)], wait=True
    )
    assert [m["content"] for m in batch["messages"]] == [f"Noted, turn {i}: no peanuts." for i in range(7)]

    # The iterator follows next_cursor: 8 messages in pages of 3 are 3 pages, oldest first.
    listed = list(acme.conversation_messages("acme", "trip", limit=3))
    assert [m["id"] for m in listed] == [stored["id"], *(m["id"] for m in batch["messages"])]
    assert acme.conversation_page("acme", "trip", limit=3)["next_cursor"] is not None

    hits = acme.search("acme", "food allergy", top_k=3)["results"]
    assert hits and hits[0]["message"]["id"] == stored["id"]
    by_body = acme.search_post("acme", "food allergy", top_k=3, metadata={"src": "chat"})["results"]
    assert [h["message"]["id"] for h in by_body] == [stored["id"]]

    context = acme.context("acme", "trip", 500, query="what can my son not eat?", scope="tenant")
    assert "peanuts" in context["prompt"] and context["tokens"]["total"] <= 500

    pinned = acme.update_message("acme", stored["id"], pinned=True, metadata=None)
    assert pinned["pinned"] and pinned["metadata"] == {}
    assert [m["id"] for m in acme.user_messages("acme", "alice")] == [stored["id"]]
    assert [m["id"] for m in acme.export_user("acme", "alice")] == [stored["id"]]

    acme.delete_message("acme", batch["messages"][0]["id"])
    with pytest.raises(NotFound) as missing:
        acme.get_message("acme", batch["messages"][0]["id"])
    assert missing.value.code == "not_found"
    assert acme.erase_user("acme", "alice")["deleted"]["messages"] == 1
    assert acme.erase_conversation("acme", "trip")["deleted"]["messages"] == 6


def test_a_retried_write_is_stored_once(acme: MemoryMesh) -> None:
    first = acme.store_message("acme", "idem", "user", "Only once, please.", client_message_id="idem-1")
    again = acme.store_message("acme", "idem", "user", "Only once, please.", client_message_id="idem-1")
    assert again["id"] == first["id"]
    assert [m["id"] for m in acme.conversation_messages("acme", "idem")] == [first["id"]]


def test_problems_raise_their_exception_naming_code_and_fields(server: ServerProcess, acme: MemoryMesh) -> None:
    with pytest.raises(ValidationError) as invalid:
        acme.store_message("acme", "trip", "user", "hi", importance=2)
    assert invalid.value.status == 422 and invalid.value.code == "validation_failed"
    assert "importance" in invalid.value.fields

    with pytest.raises(ValidationError) as invalid:
        acme.context("acme", "trip", 0)
    assert "max_tokens" in invalid.value.fields

    with pytest.raises(Forbidden) as refused:
        acme.search("globex", "vault code")
    assert refused.value.status == 403 and refused.value.code == "forbidden"
    with pytest.raises(Forbidden):
        acme.queue()  # an admin route

    with MemoryMesh(server.url, "not-a-key") as stranger, pytest.raises(Unauthorized):
        stranger.search("acme", "anything")


def test_admin_calls_answer_their_shapes(server: ServerProcess) -> None:
    with MemoryMesh(server.url, ADMIN_KEY) as admin:
        assert admin.health() == {"status": "ok"}
        assert admin.readiness()["status"] in ("ready", "degraded")
        assert "pending" in admin.queue()
        created = admin.create_api_key("client-e2e", ["acme"])
        assert created["key"] and created["id"] in [k["id"] for k in admin.list_api_keys()["api_keys"]]
        admin.revoke_api_key(created["id"])
        assert admin.set_limits("acme", "1000/minute")["rate_limit"] == "1000/minute"
        assert admin.get_limits("acme")["rate_limit"] == "1000/minute"
        assert admin.set_limits("acme", None)["rate_limit"] is None
        assert admin.set_retention("acme", archive_after_days=90)["overrides"] == {"archive_after_days": 90}
        assert admin.get_retention("acme")["overrides"] == {"archive_after_days": 90}
        run = admin.run_retention("acme", dry_run=True)
        assert run["dry_run"] and run["run_id"] in [r["run_id"] for r in admin.retention_runs()["runs"]]
        assert admin.retry_failed("acme")["requeued"] == 0
        assert "memorymesh_" in admin.metrics()
        assert admin.erase_tenant("nobody")["deleted"]["messages"] == 0


async def test_the_async_client_does_the_same_core_path(server: ServerProcess) -> None:
    async with AsyncMemoryMesh(server.url, ACME_KEY) as memory:
        stored = await memory.store_message("acme", "async", "user", "We land in Lisbon on 12 May.", wait=True)
        assert (await memory.get_message("acme", stored["id"]))["content"] == stored["content"]
        await memory.store_messages([message_fields("acme", "async", "user", f"turn {i}") for i in range(4)])
        listed = [m["id"] async for m in memory.conversation_messages("acme", "async", limit=2)]
        assert len(listed) == 5 and listed[0] == stored["id"]
        hits = (await memory.search("acme", "when do we arrive in Lisbon?"))["results"]
        assert hits[0]["message"]["id"] == stored["id"]
        context = await memory.context("acme", "async", 300)
        assert "Lisbon" in context["prompt"]
        with pytest.raises(ValidationError) as invalid:
            await memory.search("acme", "x", top_k=0)
        assert "top_k" in invalid.value.fields
        with pytest.raises(Forbidden):
            await memory.get_message("globex", stored["id"])


def test_the_console_listings_and_newest_first(server: ServerProcess) -> None:
    with MemoryMesh(server.url, GLOBEX_KEY) as globex:
        globex.store_messages([message_fields("globex", "listed", "user", f"turn {i}") for i in range(3)])
        assert globex.tenants() == {"tenants": [{"tenant_id": "globex"}], "next_after": None}
        assert (globex.me()["admin"], globex.me()["tenants"]) == (False, 1)
        [listed] = [
            c for c in globex.tenant_conversations("globex")["conversations"] if c["conversation_id"] == "listed"
        ]
        assert (listed["messages"], listed["archived"]) == (3, 0)
        newest = list(globex.conversation_messages("globex", "listed", limit=2, order="newest"))
        oldest = list(globex.conversation_messages("globex", "listed", limit=2))
        assert [m["id"] for m in newest] == [m["id"] for m in oldest][::-1]
        with pytest.raises(Forbidden):
            globex.tenant_conversations("acme")
        with pytest.raises(ValidationError) as invalid:
            globex.tenants(limit=0)
        assert "limit" in invalid.value.fields
    with MemoryMesh(server.url, ADMIN_KEY) as admin:
        assert "globex" in [t["tenant_id"] for t in admin.tenants(limit=1000)["tenants"]]
        assert admin.me()["admin"] is True


def test_every_operation_in_the_openapi_document_has_a_client_method(server: ServerProcess) -> None:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    documented = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert documented - set(OPERATIONS) == set(), "operations the client has no method for"
    assert set(OPERATIONS) - documented == set(), "client methods for operations the server no longer has"
    for name in OPERATIONS.values():
        assert callable(getattr(MemoryMesh, name)) and callable(getattr(AsyncMemoryMesh, name)), name


def readme_block(marker: str, fence: str = "```python\n") -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    return readme.split(f"<!-- {marker}", 1)[1].split(fence, 1)[1].split("```", 1)[0]


def test_the_readme_examples_work_as_printed(server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "MEMORY_URL": server.url, "MEMORY_API_KEY": ACME_KEY}
    printed = []
    for marker in ("client-example", "client-async-example"):
        (tmp_path / "example.py").write_text(readme_block(marker))
        run = subprocess.run(
            [sys.executable, "example.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        printed.append(run.stdout)
    # The sync block's output is the one the README shows under it.
    assert printed[0] == readme_block("client-example", "It prints (the two hits best first):\n\n```\n")
    assert printed[1] == "True True\n"


def test_the_quickstart_in_python_works_as_printed(server: ServerProcess, tmp_path: Path) -> None:
    """The Python twin of the README's curl quick start, with the admin key it is written for.
    Last in the module: it erases the conversation the other README examples fill."""
    (tmp_path / "quickstart.py").write_text(readme_block("quickstart-python"))
    env = {**os.environ, "MEMORY_URL": server.url, "MEMORY_API_KEY": ADMIN_KEY}
    run = subprocess.run(
        [sys.executable, "quickstart.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "peanuts" in lines[0]  # the best hit for "any food restrictions?"
    assert lines[1:3] == ["embedded", "ok ready"]
    assert lines[3].endswith(" messages") and int(lines[3].split()[0]) >= 3
    assert lines[4:6] == ["True", "True"]  # pinned; a dry run
    assert lines[6].startswith("{'messages': ") and "'vectors': " in lines[6]
    assert lines[7] == "[] []"  # no message of alice in this quick start
    assert lines[8] == "{'conversations': 0, 'messages': 0, 'vectors': 0}"
    assert lines[9] == str(
        sorted(["pending", "claimed", "failed", "oldest_pending_age_seconds", "jobs_queued", "this_process"])
    )
