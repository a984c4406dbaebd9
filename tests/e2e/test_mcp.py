"""The MCP server against the real server process, with the official `mcp` client: over
streamable HTTP at /mcp, and over stdio through `memorymesh mcp`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.e2e.server import MEMORYMESH, ServerProcess

ADMIN_KEY = "e2e-admin-key-000000000021"
ACME_KEY = "e2e-acme-key-0000000000021"
GLOBEX_KEY = "e2e-globex-key-00000000021"
TOOLS = {"remember", "recall", "get_context", "list_conversation", "forget_message", "forget_conversation"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("e2e-mcp") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme,{GLOBEX_KEY}:globex",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output


@asynccontextmanager
async def session(server: ServerProcess, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        yield client


def answer(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    found: dict[str, Any] = result.structured_content
    assert found == json.loads(result.content[0].text)
    return found


def refusal(result: Any, code: str) -> str:
    """A tool error's text, which carries the problem's code (after the SDK's "Error executing tool x: ")."""
    assert result.is_error, result
    text: str = result.content[0].text
    assert f"{code}: " in text, text
    return text


async def test_the_tools_are_listed_with_their_schemas(server: ServerProcess) -> None:
    async with session(server, {"x-api-key": ACME_KEY}) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.input_schema["type"] == "object"
        assert "tenant_id" in tool.input_schema["properties"], tool.name
    assert tools["recall"].input_schema["required"] == ["query"]
    assert set(tools["remember"].input_schema["required"]) == {"conversation_id", "role", "content"}


async def test_each_tool_works_for_a_key_of_one_tenant(server: ServerProcess) -> None:
    async with session(server, {"Authorization": f"Bearer {ACME_KEY}"}) as client:
        first = answer(
            await client.call_tool(
                "remember",
                {"conversation_id": "trip", "role": "user", "content": "I am allergic to peanuts", "user_id": "ann"},
            )
        )["message"]
        assert first["tenant_id"] == "acme" and first["user_id"] == "ann"
        second = answer(
            await client.call_tool(
                "remember",
                {
                    "conversation_id": "trip",
                    "role": "assistant",
                    "content": "Noted: no peanuts at dinner",
                    "metadata": {"source": "mcp"},
                },
            )
        )
        assert second["searchable"] is True and second["message"]["metadata"] == {"source": "mcp"}

        found = answer(await client.call_tool("recall", {"query": "food allergy", "top_k": 1}))["results"]
        assert [r["message"]["id"] for r in found] == [first["id"]]

        context = answer(await client.call_tool("get_context", {"conversation_id": "trip", "max_tokens": 200}))
        assert "peanuts" in context["prompt"] and context["tokens"]["total"] <= 200

        page = answer(await client.call_tool("list_conversation", {"conversation_id": "trip", "limit": 1}))
        assert [m["id"] for m in page["messages"]] == [first["id"]] and page["next_cursor"]
        rest = answer(
            await client.call_tool(
                "list_conversation", {"conversation_id": "trip", "limit": 1, "cursor": page["next_cursor"]}
            )
        )
        assert [m["id"] for m in rest["messages"]] == [second["message"]["id"]]

        assert answer(await client.call_tool("forget_message", {"message_id": first["id"]}))["deleted"] == first["id"]
        refusal(await client.call_tool("forget_message", {"message_id": first["id"]}), "not_found")
        erased = answer(await client.call_tool("forget_conversation", {"conversation_id": "trip"}))
        assert erased["deleted"]["messages"] == 1
        empty = answer(await client.call_tool("list_conversation", {"conversation_id": "trip"}))
        assert empty["messages"] == []


async def test_a_key_never_reaches_another_tenant(server: ServerProcess) -> None:
    with server.client(GLOBEX_KEY) as rest:
        stored = rest.post(
            "/v1/messages",
            params={"wait": "true"},
            json={"tenant_id": "globex", "conversation_id": "secret", "role": "user", "content": "globex plans"},
        )
        assert stored.status_code == 201, stored.text
        secret = stored.json()
    async with session(server, {"x-api-key": ACME_KEY}) as client:
        for name, arguments in [
            ("remember", {"conversation_id": "secret", "role": "user", "content": "x"}),
            ("recall", {"query": "globex plans"}),
            ("get_context", {"conversation_id": "secret"}),
            ("list_conversation", {"conversation_id": "secret"}),
            ("forget_message", {"message_id": secret["id"]}),
            ("forget_conversation", {"conversation_id": "secret"}),
        ]:
            text = refusal(await client.call_tool(name, {**arguments, "tenant_id": "globex"}), "forbidden")
            assert "globex plans" not in text
        # Without tenant_id the key acts in its own tenant: globex's message is not there.
        refusal(await client.call_tool("forget_message", {"message_id": secret["id"]}), "not_found")
        assert answer(await client.call_tool("recall", {"query": "globex plans"}))["results"] == []
        assert answer(await client.call_tool("list_conversation", {"conversation_id": "secret"}))["messages"] == []
        assert answer(await client.call_tool("forget_conversation", {"conversation_id": "secret"}))["deleted"] == {
            "messages": 0,
            "vectors": 0,
        }
    with server.client(GLOBEX_KEY) as rest:
        kept = rest.get(f"/v1/messages/{secret['id']}", params={"tenant_id": "globex"})
        assert kept.status_code == 200 and kept.json()["content"] == "globex plans"


async def test_an_admin_key_names_the_tenant(server: ServerProcess) -> None:
    async with session(server, {"x-api-key": ADMIN_KEY}) as client:
        text = refusal(await client.call_tool("recall", {"query": "plans"}), "validation_failed")
        assert "tenant_id" in text, text
        assert "results" in answer(await client.call_tool("recall", {"query": "plans", "tenant_id": "globex"}))


async def test_a_bad_argument_is_a_tool_error_naming_it(server: ServerProcess) -> None:
    async with session(server, {"x-api-key": ACME_KEY}) as client:
        empty = await client.call_tool("remember", {"conversation_id": "c", "role": "user", "content": ""})
        assert "validation_failed: content: " in refusal(empty, "validation_failed")
        # Refused by the tool's input schema (minimum 1), which the SDK checks first.
        budget = await client.call_tool("get_context", {"conversation_id": "c", "max_tokens": 0})
        assert budget.is_error and "max_tokens" in budget.content[0].text, budget
        bad_id = await client.call_tool("list_conversation", {"conversation_id": "no spaces"})
        assert "conversation_id: " in refusal(bad_id, "validation_failed")
        cursor = await client.call_tool("list_conversation", {"conversation_id": "c", "cursor": "junk"})
        assert "cursor: " in refusal(cursor, "validation_failed")
        # The session lives on after every refusal.
        assert len((await client.list_tools()).tools) == len(TOOLS)


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "not-a-key"}, {"Authorization": "Bearer not-a-key"}])
def test_no_valid_key_is_a_401(server: ServerProcess, headers: dict[str, str]) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(
        f"{server.url}/mcp", json=body, headers={"accept": "application/json, text/event-stream", **headers}
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"


async def test_mcp_requests_are_counted_and_logged_as_rest_requests_are(server: ServerProcess) -> None:
    async with session(server, {"x-api-key": ACME_KEY}) as client:
        await client.list_tools()
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/mcp", json={}, headers={"x-api-key": "not-a-key"})
        metrics = (await http.get("/metrics")).text
    assert 'memorymesh_http_requests_total{method="POST",route="/mcp",status="200"}' in metrics
    assert 'memorymesh_http_requests_total{method="POST",route="/mcp",status="401"}' in metrics
    logged = [json.loads(line) for line in server.lines if '"route": "/mcp"' in line or '"route":"/mcp"' in line]
    assert {entry["status"] for entry in logged} >= {200, 401}
    assert all(ACME_KEY not in json.dumps(entry) for entry in logged)  # the key id, never the key
    assert any(entry.get("key_id") for entry in logged if entry["status"] == 200)


async def test_a_connection_bound_to_a_user_remembers_and_recalls_for_them(server: ServerProcess) -> None:
    async with session(server, {"x-api-key": ACME_KEY}) as unbound:
        other = {"conversation_id": "bound", "role": "user", "content": "Bob keeps bees on the roof", "user_id": "bob"}
        answer(await unbound.call_tool("remember", other))
    async with session(server, {"x-api-key": ACME_KEY, "x-memorymesh-user-id": "alice"}) as client:
        said = {"conversation_id": "bound", "role": "user", "content": "Alice keeps bees in the garden"}
        stored = answer(await client.call_tool("remember", said))["message"]
        assert stored["user_id"] == "alice"
        found = answer(await client.call_tool("recall", {"query": "who keeps bees", "top_k": 5}))["results"]
        assert [r["message"]["id"] for r in found] == [stored["id"]]  # alice's only, not bob's
        named = answer(await client.call_tool("recall", {"query": "who keeps bees", "user_id": "bob"}))["results"]
        assert {r["message"]["user_id"] for r in named} == {"bob"}  # a call that names a user wins
        context = answer(await client.call_tool("get_context", {"conversation_id": "elsewhere", "query": "bees"}))
        assert [m["message"]["user_id"] for m in context["memories"]] == ["alice"]  # the user scope, by default
    async with session(server, {"x-api-key": ACME_KEY, "x-memorymesh-user-id": "not an id!"}) as client:
        refusal(await client.call_tool("remember", said), "validation_failed")


async def test_memorymesh_mcp_serves_the_same_tools_on_stdio(server: ServerProcess) -> None:
    command = StdioServerParameters(
        command=MEMORYMESH, args=["mcp"], env={"MEMORY_URL": server.url, "MEMORY_API_KEY": GLOBEX_KEY}
    )
    async with stdio_client(command) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        async with session(server, {"x-api-key": GLOBEX_KEY}) as direct:
            assert tools == {tool.name: tool for tool in (await direct.list_tools()).tools}
        stored = answer(
            await client.call_tool(
                "remember", {"conversation_id": "stdio", "role": "user", "content": "The launch moved to Thursday"}
            )
        )["message"]
        assert stored["tenant_id"] == "globex"
        found = answer(await client.call_tool("recall", {"query": "when is the launch", "top_k": 1}))["results"]
        assert [r["message"]["id"] for r in found] == [stored["id"]]
        refusal(await client.call_tool("recall", {"query": "launch", "tenant_id": "acme"}), "forbidden")
    bound = StdioServerParameters(
        command=MEMORYMESH,
        args=["mcp", "--user-id", "carol"],
        env={"MEMORY_URL": server.url, "MEMORY_API_KEY": GLOBEX_KEY},
    )
    async with stdio_client(bound) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        said = {"conversation_id": "stdio", "role": "user", "content": "Carol flies to Oslo"}
        assert answer(await client.call_tool("remember", said))["message"]["user_id"] == "carol"


def test_memorymesh_mcp_refuses_to_start_without_a_service() -> None:
    done = subprocess.run(
        [MEMORYMESH, "mcp", "--url", "http://127.0.0.1:9"],
        env={"MEMORY_API_KEY": "k", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no answer from http://127.0.0.1:9/mcp" in done.stderr, done.stderr
    assert done.stdout == ""


def test_memorymesh_mcp_says_when_the_key_is_refused(server: ServerProcess) -> None:
    done = subprocess.run(
        [MEMORYMESH, "mcp"],
        env={**os.environ, "MEMORY_URL": server.url, "MEMORY_API_KEY": "not-a-key-0000000000"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "unauthorized: the API key is not valid" in done.stderr, done.stderr


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_answered_and_nothing_is_held_open(server: ServerProcess, method: str) -> None:
    """A GET would be an SSE stream held open for the read timeout, keeping a load-shedding slot:
    40 of them from one key refused every tenant 503 (found by attacking it)."""
    headers = {"x-api-key": ACME_KEY, "accept": "application/json, text/event-stream"}
    response = httpx.request(method, f"{server.url}/mcp", headers=headers, timeout=5)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["code"] == "method_not_allowed"


async def test_every_post_counts_against_the_keys_rate_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    limited = ServerProcess(
        tmp_path_factory.mktemp("e2e-mcp-key-limited") / "data",
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
        MEMORY_GLOBAL_RATE_LIMIT="3/hour",
    ).start()
    try:
        limited.wait_ready()
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"x-api-key": ACME_KEY, "accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=limited.url, headers=headers) as http:
            answered = [(await http.post("/mcp", json=body)).status_code for _ in range(4)]
            refused = await http.post("/mcp", json=body)
        assert 429 not in answered[:3] and answered[3] == 429, answered  # not only tool calls count
        assert refused.json()["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
    finally:
        assert limited.stop() == 0, limited.output


async def test_a_remember_retried_with_its_client_message_id_stores_once(server: ServerProcess) -> None:
    said = {"conversation_id": "retried", "role": "user", "content": "Pay the plumber", "client_message_id": "m-1"}
    async with session(server, {"x-api-key": ACME_KEY}) as client:
        first = answer(await client.call_tool("remember", said))
        again = answer(await client.call_tool("remember", said))
        assert again["message"]["id"] == first["message"]["id"] and again["replayed"]
        page = answer(await client.call_tool("list_conversation", {"conversation_id": "retried"}))
        assert len(page["messages"]) == 1


async def test_a_rate_limited_call_is_a_tool_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    limited = ServerProcess(
        tmp_path_factory.mktemp("e2e-mcp-limited") / "data",
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
        MEMORY_TENANT_RATE_LIMIT="2/hour",
    ).start()
    try:
        limited.wait_ready()
        async with session(limited, {"x-api-key": ACME_KEY}) as client:
            for _ in range(2):
                answer(await client.call_tool("recall", {"query": "anything"}))
            refusal(await client.call_tool("recall", {"query": "anything"}), "rate_limited")
            assert len((await client.list_tools()).tools) == len(TOOLS)  # the session goes on
    finally:
        assert limited.stop() == 0, limited.output


def test_the_readme_example_works_as_printed(server: ServerProcess, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    block = readme.split("<!-- mcp-example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.py").write_text(block)
    env = {**os.environ, "MEMORY_URL": server.url, "MEMORY_API_KEY": ADMIN_KEY}
    run = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "alice I'm vegetarian\n"
