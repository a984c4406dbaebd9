"""schemathesis against the real server's own /openapi.json: every operation, once with an
admin key and once with a key for one tenant.

No answer may be a 5xx, break the schema the server publishes for it, or carry a status
code the schema does not list. The seed is fixed, so a failure is reproduced by running the
command printed here; schemathesis prints the number of cases it ran, and a curl line for
each failure.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-fuzz-admin-key-000001"
ACME_KEY = "e2e-fuzz-acme-key-0000001"
SEED = 20261124
MAX_EXAMPLES = 50  # per operation and phase: about 2,500 cases, half a minute here
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# With a tenant's key, generated tenant ids would almost all be refused (403) and go no
# further: most requests name the key's own tenant instead, so the cases reach the use cases.
TENANT_CONFIG = """
[parameters]
"query.tenant_id" = "acme"
"path.tenant_id" = { dictionary = "tenants", probability = 0.8 }
"body.tenant_id" = { dictionary = "tenants", probability = 0.9 }
"body.messages[*].tenant_id" = { dictionary = "tenants", probability = 0.9 }

[dictionaries.tenants]
values = ["acme"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("fuzz") / "data",
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_API_KEYS=f"{ACME_KEY}:acme",
        MEMORY_EMBEDDING_MODE="inline",  # what a case stored, the next case finds
    ).start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.output
    assert "Traceback" not in process.output, process.output[-10_000:]


def schemathesis(server: ServerProcess, key: str, workdir: Path) -> None:
    command = [
        SCHEMATHESIS,
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"x-api-key: {key}",
        "--checks",
        "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(workdir / "report"),
    ]
    result = subprocess.run(
        command,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=workdir,  # its config (if any) is read from here; its example database stays out of the checkout
    )
    print(f"(cd {workdir} && {' '.join(command)})")  # the seed: the same cases again
    print(result.stdout[-20_000:])
    report = f"{result.stdout[-20_000:]}\n{result.stderr[-5_000:]}\n--- server ---\n{server.output[-10_000:]}"
    assert result.returncode == 0, report
    assert "Test cases:" in result.stdout and f"Seed: {SEED}" in result.stdout  # how many, and how to run them again


def test_no_generated_request_with_an_admin_key_gets_a_5xx_or_an_answer_outside_the_schema(
    server: ServerProcess, tmp_path: Path
) -> None:
    schemathesis(server, ADMIN_KEY, tmp_path)


def test_no_generated_request_with_a_tenant_key_gets_a_5xx_or_an_answer_outside_the_schema(
    server: ServerProcess, tmp_path: Path
) -> None:
    (tmp_path / "schemathesis.toml").write_text(TENANT_CONFIG)
    schemathesis(server, ACME_KEY, tmp_path)
