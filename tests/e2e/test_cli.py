"""The `memorymesh` commands, run as a user would, against a fresh embedded database."""

import os
import subprocess
from pathlib import Path

from tests.e2e.server import MEMORYMESH


def memorymesh(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
    env.update(MEMORY_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    return subprocess.run([MEMORYMESH, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_db_current_and_upgrade_report_the_schema(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    before = memorymesh(data_dir, "db", "current")
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == [
        "current: empty database",
        "pending: 0001_messages, 0002_embedding_queue, 0003_tenant_limits",
    ]

    upgrade = memorymesh(data_dir, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip() == "applied: 0001_messages, 0002_embedding_queue, 0003_tenant_limits"

    again = memorymesh(data_dir, "db", "upgrade")
    assert again.stdout.strip() == "applied: nothing, the schema is current"
    after = memorymesh(data_dir, "db", "current")
    assert after.stdout.splitlines() == ["current: 0003_tenant_limits", "pending: none"]


def test_db_upgrade_refuses_a_server_without_pgvector(tmp_path: Path) -> None:
    env_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    result = subprocess.run(
        [MEMORYMESH, "db", "upgrade"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")},
            "MEMORY_DATABASE_URL": env_url,
            "HF_HUB_OFFLINE": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert "has no pgvector extension" in result.stderr


def test_invalid_settings_are_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [MEMORYMESH, "serve"],
        env={**os.environ, "MEMORY_API_KEYS": "short:acme", "MEMORY_PORT": "99999"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "MEMORY_PORT" in result.stderr and "MEMORY_API_KEYS" in result.stderr


def test_a_worker_without_the_arq_queue_says_how_to_set_it(tmp_path: Path) -> None:
    result = memorymesh(tmp_path / "data", "worker")
    assert result.returncode != 0
    assert "set MEMORY_QUEUE=arq" in result.stderr
    no_redis = subprocess.run(
        [MEMORYMESH, "worker"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}, "MEMORY_QUEUE": "arq"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_redis.returncode != 0 and "MEMORY_QUEUE=arq needs MEMORY_REDIS_URL" in no_redis.stderr
    assert "Traceback" not in result.stderr


def test_keys_create_list_and_revoke(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert "run `memorymesh db upgrade` first" in memorymesh(data_dir, "keys", "list").stderr
    assert memorymesh(data_dir, "db", "upgrade").returncode == 0

    created = memorymesh(data_dir, "keys", "create", "--name", "support bot", "--tenant", "acme", "--tenant", "globex")
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split("id: ")[1].split()[0]
    assert "key: mm_" in created.stdout

    listed = memorymesh(data_dir, "keys", "list")
    assert f"{key_id}  'support bot'  tenants=acme,globex  active" in listed.stdout
    assert "mm_" not in listed.stdout

    assert memorymesh(data_dir, "keys", "revoke", key_id).returncode == 0
    assert "revoked 20" in memorymesh(data_dir, "keys", "list").stdout
    refused = memorymesh(data_dir, "keys", "create", "--name", "no tenants")
    assert refused.returncode != 0 and "at least one tenant" in refused.stderr
    unknown = memorymesh(data_dir, "keys", "revoke", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode != 0 and "no API key" in unknown.stderr
