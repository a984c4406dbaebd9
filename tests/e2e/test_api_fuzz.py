"""schemathesis against the real server's own /openapi.json: every operation, with an admin key.

No answer may be a 5xx, break the schema the server publishes for it, or carry a status
code the schema does not list. The seed is fixed, so a failure is reproduced by running the
command printed here; schemathesis prints the number of cases it ran, and a curl line for
each failure.
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.server import ServerProcess

ADMIN_KEY = "e2e-fuzz-admin-key-000001"
SEED = 20261124
MAX_EXAMPLES = 50  # per operation and phase: about 2,500 cases, half a minute here
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_schema(tmp_path: Path, database_url: str) -> None:
    server = ServerProcess(
        tmp_path / "data",
        MEMORY_DATABASE_URL=database_url,
        MEMORY_ADMIN_API_KEYS=ADMIN_KEY,
        MEMORY_EMBEDDING_MODE="inline",  # what a case stored, the next case finds
    ).start()
    server.wait_ready()
    command = [
        SCHEMATHESIS,
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"x-api-key: {ADMIN_KEY}",
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
        str(tmp_path / "report"),
    ]
    try:
        result = subprocess.run(
            command,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=tmp_path,  # its example database (.schemathesis/) stays out of the checkout
        )
    finally:
        server.stop()
    print(" ".join(command))  # the seed: the same cases again
    print(result.stdout[-20_000:])
    report = f"{result.stdout[-20_000:]}\n{result.stderr[-5_000:]}\n--- server ---\n{server.output[-10_000:]}"
    assert result.returncode == 0, report
    assert "Test cases:" in result.stdout and f"Seed: {SEED}" in result.stdout  # how many, and how to run them again
