"""`pip install ./clients/python` in a fresh venv brings the client and nothing of the server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("torch", "asyncpg", "quart", "pydantic", "sentence_transformers")

pytestmark = pytest.mark.slow


def run(*command: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout, check=False)


def test_the_client_installs_alone_in_a_fresh_venv(tmp_path: Path) -> None:
    # A copy, so the build leaves nothing (egg-info, build/) in the working tree.
    source = shutil.copytree(
        ROOT / "clients" / "python", tmp_path / "client", ignore=shutil.ignore_patterns("*.egg-info", "build")
    )
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv)  # no --system-site-packages: only what pip installs
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"

    installed = run(python, "-m", "pip", "install", "--quiet", source)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    probe = (
        "import importlib.util, memorymesh_client\n"
        "print(memorymesh_client.MemoryMesh.__name__, memorymesh_client.AsyncMemoryMesh.__name__)\n"
        f"print(sorted(n for n in {SERVER_ONLY!r} if importlib.util.find_spec(n) is not None))\n"
    )
    probed = run(python, "-c", probe, timeout=60)
    assert probed.returncode == 0, probed.stderr
    assert probed.stdout.splitlines() == ["MemoryMesh AsyncMemoryMesh", "[]"]

    frozen = run(python, "-m", "pip", "freeze", timeout=60).stdout.lower()
    assert "memorymesh-client" in frozen or "memorymesh_client" in frozen
    assert "httpx" in frozen
