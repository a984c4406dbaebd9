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
        "pending: 0001_messages, 0002_embedding_queue, 0003_tenant_limits, 0004_lifecycle_retention, 0005_search_text, "
        "0006_embedding_models, 0007_retention_run_failures, 0008_date_words_of_infinity, 0009_fair_embedding_claims, "
        "0010_user_scope",
    ]

    upgrade = memorymesh(data_dir, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip() == (
        "applied: 0001_messages, 0002_embedding_queue, 0003_tenant_limits, 0004_lifecycle_retention, 0005_search_text, "
        "0006_embedding_models, 0007_retention_run_failures, 0008_date_words_of_infinity, 0009_fair_embedding_claims, "
        "0010_user_scope"
    )

    again = memorymesh(data_dir, "db", "upgrade")
    assert again.stdout.strip() == "applied: nothing, the schema is current"
    after = memorymesh(data_dir, "db", "current")
    assert after.stdout.splitlines() == ["current: 0010_user_scope", "pending: none"]


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


def test_a_key_that_is_not_ascii_is_refused_at_start_naming_the_setting(tmp_path: Path) -> None:
    key = "clé-secrète-de-test-0001"
    result = subprocess.run(
        [MEMORYMESH, "serve"],
        env={**os.environ, "MEMORY_API_KEYS": f"{key}:acme", "MEMORY_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "MEMORY_API_KEYS" in result.stderr and "visible ASCII" in result.stderr, result.stderr
    assert key not in result.stderr + result.stdout


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


def test_a_lost_qdrant_index_is_found_by_check_index_and_rebuilt_by_reindex(tmp_path: Path) -> None:
    import shutil

    from tests.e2e.server import ServerProcess

    admin = "cli-reindex-admin-key-0001"
    data_dir = tmp_path / "data"
    env = {"MEMORY_VECTOR_STORE": "qdrant", "MEMORY_ADMIN_API_KEYS": admin}
    server = ServerProcess(data_dir, **env).start().wait_ready()
    try:
        with server.client(admin) as client:
            for text in ("We moved to Porto in March.", "The cat is called Miso.", "Rent is due on the 3rd."):
                body = {"tenant_id": "home", "conversation_id": "c", "role": "user", "content": text}
                assert client.post("/v1/messages", params={"wait": "true"}, json=body).status_code == 201
    finally:
        assert server.stop() == 0, server.output
    shutil.rmtree(data_dir / "qdrant")  # the index is lost; PostgreSQL still has everything

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
        command_env.update(MEMORY_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **env)
        return subprocess.run([MEMORYMESH, *args], env=command_env, capture_output=True, text=True, timeout=300)

    drifted = run("check-index")
    assert drifted.returncode != 0
    assert "home: DRIFT: 3 embedded in PostgreSQL, 0 in the index, 3 missing" in drifted.stdout

    rebuilt = run("reindex")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "home: 3 messages reindexed" in rebuilt.stdout

    clean = run("check-index", "--tenant", "home")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "home: in step: 3 embedded in PostgreSQL, 3 in the index" in clean.stdout


def test_model_export_makes_the_onnx_file_once_and_says_where(tmp_path: Path) -> None:
    """What `make` runs at install (and an image at build), so no first start waits for an export."""
    cache = tmp_path / "cache"
    exported = memorymesh(tmp_path / "data", "model", "export", "--cache-dir", str(cache))
    assert exported.returncode == 0, exported.stderr
    path = Path(exported.stdout.strip())
    assert path.parent == cache and path.suffix == ".onnx" and path.stat().st_size > 80_000_000
    made = path.stat().st_mtime_ns
    again = memorymesh(tmp_path / "data", "model", "export", "--cache-dir", str(cache))
    assert again.returncode == 0 and Path(again.stdout.strip()) == path and path.stat().st_mtime_ns == made

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
    on_torch = subprocess.run(
        [MEMORYMESH, "model", "export"],
        env={**env, "MEMORY_EMBEDDING_RUNTIME": "torch"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert on_torch.returncode == 1
    assert on_torch.stderr.strip() == (
        "memorymesh: the local model runs on torch (MEMORY_EMBEDDING_RUNTIME): nothing to export"
    )
