"""POST /v1/context against the real server process: embedded PostgreSQL + pgvector, the real
MiniLM model and the real o200k_base tokenizer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.tokenizers.bpe_openai import BpeOpenAiTokenizer
from tests.e2e.server import ServerProcess

ACME_KEY = "e2e-acme-key-0000000000001"
GLOBEX_KEY = "e2e-globex-key-00000000001"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("e2e-context") / "data",
        MEMORY_API_KEYS=f"{ACME_KEY}:acme,{GLOBEX_KEY}:globex",
        MEMORY_CONTEXT_MAX_TOKENS="4000",
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output


def said(client: httpx.Client, tenant: str, conversation: str, turns: list[tuple[str, str]], start: datetime) -> list:
    messages = [
        {
            "tenant_id": tenant,
            "conversation_id": conversation,
            "role": role,
            "content": content,
            "created_at": (start + timedelta(minutes=i)).isoformat(),
        }
        for i, (role, content) in enumerate(turns)
    ]
    response = client.post("/v1/messages/batch", params={"wait": "true"}, json={"messages": messages})
    assert response.status_code in (200, 201), response.text
    return response.json()["messages"]


def context(client: httpx.Client, **fields) -> httpx.Response:
    return client.post("/v1/context", json={"tenant_id": "acme", "conversation_id": "today", **fields})


def test_a_context_fits_its_budget_drops_repeats_and_keeps_the_newest_turn(server: ServerProcess) -> None:
    tokenizer = BpeOpenAiTokenizer("o200k_base")
    with server.client(ACME_KEY) as client:
        said(
            client,
            "acme",
            "last-spring",
            [
                ("user", "My son is allergic to peanuts, so no satay please."),
                ("assistant", "Noted: no peanuts for your son."),
                ("user", "My son is allergic to peanuts, so no satay please!"),
                ("user", "The hotel in Lisbon has a rooftop pool."),
            ],
            START,
        )
        long_turn = "We should plan every meal of the trip carefully. " * 200
        today = said(
            client,
            "acme",
            "today",
            [("user", long_turn), ("assistant", "Happy to help plan."), ("user", "Which foods must my son avoid?")],
            START + timedelta(days=60),
        )
        for budget in (40, 120, 400, 2000):
            response = context(client, max_tokens=budget, scope="tenant")
            assert response.status_code == 200, response.text
            body = response.json()
            assert tokenizer.count(body["prompt"]) == body["tokens"]["total"] <= budget == body["tokens"]["budget"]
            assert body["recent"][-1]["message"]["id"] == today[-1]["id"]  # the newest turn, always

        body = context(client, max_tokens=2000, scope="tenant").json()
        contents = [m["message"]["content"] for m in body["memories"]]
        assert contents[0].startswith("My son is allergic to peanuts")
        assert sum(c.startswith("My son is allergic to peanuts") for c in contents) == 1  # the repeat collapsed
        ids = [e["message"]["id"] for e in body["recent"] + body["memories"]]
        assert len(ids) == len(set(ids))
        assert "2026-03-01" in body["prompt"] and "conversation last-spring" in body["prompt"]
        # An older turn is taken whole or not at all: the long first turn does not fit, so it is
        # not a recent turn (it may come back as a memory: only the turns shown are never memories).
        recent_ids = [e["message"]["id"] for e in body["recent"]]
        assert today[0]["id"] not in recent_ids and not any(e["cut"] for e in body["recent"])
        assert set(recent_ids).isdisjoint(m["message"]["id"] for m in body["memories"])

        # The newest turn, longer than the budget: kept, cut at a token boundary, marked.
        (newest,) = said(client, "acme", "long", [("user", long_turn)], START + timedelta(days=61))
        body = client.post(
            "/v1/context", json={"tenant_id": "acme", "conversation_id": "long", "max_tokens": 300}
        ).json()
        (entry,) = body["recent"]
        assert entry["message"]["id"] == newest["id"] and entry["cut"] and body["prompt"].endswith("[…]")
        assert long_turn.startswith(entry["content"]) and len(entry["content"]) < len(long_turn)
        assert tokenizer.count(body["prompt"]) == body["tokens"]["total"] <= 300

        # Scope conversation: nothing from last spring.
        body = context(client, max_tokens=2000).json()
        assert all(m["message"]["conversation_id"] == "today" for m in body["memories"])


def test_bad_input_is_a_clear_4xx_and_an_unknown_conversation_an_empty_context(server: ServerProcess) -> None:
    with server.client(ACME_KEY) as client:
        for fields, field in (
            ({"max_tokens": 0}, "max_tokens"),
            ({"max_tokens": -3}, "max_tokens"),
            ({"max_tokens": 4001}, "max_tokens"),
            ({"max_tokens": 100, "scope": "user"}, "scope"),
        ):
            response = context(client, **fields)
            assert 400 <= response.status_code < 500 and field in response.text, response.text
        response = context(client, max_tokens=100, conversation_id="nobody-ever-spoke-here")
        assert response.status_code == 200
        assert response.json()["prompt"] == "" and response.json()["tokens"]["total"] == 0
        assert context(client, max_tokens=100, query="the of and").status_code == 200


def test_a_key_for_another_tenant_gets_no_byte_of_it(server: ServerProcess) -> None:
    # The secret is not hex: "7421" alone was found in acme's own answer, inside a message id.
    secret = "zebra-vault-7421"
    with server.client(GLOBEX_KEY) as globex:
        said(globex, "globex", "vault", [("user", f"The globex vault code is {secret}.")], START)
    with server.client(ACME_KEY) as acme:
        refused = acme.post("/v1/context", json={"tenant_id": "globex", "conversation_id": "vault", "max_tokens": 500})
        assert refused.status_code == 403 and secret not in refused.text
        mine = context(acme, max_tokens=2000, scope="tenant", query="vault code")
        assert mine.status_code == 200
        assert secret not in mine.text and "zebra" not in mine.text and "globex" not in mine.text


def test_the_readme_example_works_as_printed(server: ServerProcess, tmp_path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    block = readme.split("<!-- context-example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.py").write_text(block)
    env = {**os.environ, "MEMORY_URL": server.url, "MEMORY_API_KEY": ACME_KEY}
    run = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "conversation support-41, user] My son is allergic to peanuts" in run.stdout
    assert "conversation support-41, assistant] Noted: no peanuts" in run.stdout
    assert "'budget': 1000" in run.stdout
