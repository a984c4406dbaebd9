"""The wheel ships the service and nothing of its tests: no tests package, no fakes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE = re.compile(r"fake|in_?memory", re.IGNORECASE)


def tracked_tree(destination: Path) -> Path:
    """A copy of the files git tracks: what a release is built from, without a working tree's
    leftovers (a stale build/lib would put files deleted since into the wheel)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True)
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def test_the_wheel_holds_the_service_and_no_test_code(tmp_path: Path) -> None:
    source = tracked_tree(tmp_path / "source")
    # No build isolation: no index is needed (setuptools>=70.1 builds wheels by itself).
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("memorymesh-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        sources = {name: archive.read(name).decode("utf-8") for name in names if name.endswith(".py")}

    assert [name for name in names if name.split("/")[0] == "tests"] == []
    assert [name for name in names if FAKE.search(name)] == []
    assert [name for name, text in sources.items() if re.search(r"^class (InMemory|Fake)", text, re.MULTILINE)] == []
    assert "adapters/inprocess/job_queue.py" in names
    assert "entrypoints/cli/__main__.py" in names
    # The console's page, script and style, and /docs' start-up script: package data, not code.
    assert {
        f"entrypoints/console/static/{name}"
        for name in ("console.html", "console.js", "console.css", "docs.html", "docs.js")
    } <= set(names)
    migrations = [name for name in names if name.startswith("adapters/postgres/migrations/") and name.endswith(".sql")]
    assert "adapters/postgres/migrations/0001_messages.sql" in migrations and len(migrations) >= 9
