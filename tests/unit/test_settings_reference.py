"""The README's table of settings and .env.example name every setting there is, and no other."""

import re
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"^\| `((?:MEMORY|OTEL)_[A-Z_]+)` \| ([^|]+) \|", re.M)


def variables() -> dict[str, object]:
    """Every setting's environment variable, with its default."""
    names = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names[alias if isinstance(alias, str) else f"MEMORY_{name.upper()}"] = field.default
    return names


def reference_table() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Every setting", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2).strip() for m in VARIABLE.finditer(section)}


def test_the_readme_table_lists_every_setting_with_its_default():
    table = reference_table()
    assert set(table) == set(variables())
    for name, default in variables().items():
        shown = "unset" if default in (None, "") else f"`{default}`"
        assert table[name] == shown, name


def test_env_example_names_every_setting():
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^(?:# )?((?:MEMORY|OTEL)_[A-Z_]+)=", example, re.M))  # set, or shown commented out
    assert named == set(variables()) - {"MEMORY_REUSE_PORT"}  # set by the parent process, not by people


def test_env_example_loads_as_it_is():
    """Copied to .env unchanged, it must start the service: blank values mean unset."""
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.worker_metrics_port is None and settings.otel_exporter_otlp_endpoint is None
