"""Keys in MEMORY_API_KEYS / MEMORY_ADMIN_API_KEYS are visible ASCII, or the service refuses
to start, naming the setting and never echoing the key. Any other character would reach the
service only as the bytes of whatever encoding a client picked for its header."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from config.settings import Settings

# Any character but the settings' own separators; spaces at the ends are trimmed as entries are.
KEYS = st.text(st.characters(exclude_characters=",:", exclude_categories=("Cs",)), min_size=16, max_size=40).filter(
    lambda key: key == key.strip() and len(key) >= 16
)


def visible_ascii(key: str) -> bool:
    return all("!" <= c <= "~" for c in key)


@pytest.mark.parametrize("key", ["clé-de-test-000000001", "key with a space 0001", "ключ-для-тестов-0001"])
@pytest.mark.parametrize(("setting", "entry"), [("api_keys", "{key}:acme"), ("admin_api_keys", "{key}")])
def test_a_key_that_is_not_visible_ascii_is_refused_at_start(key: str, setting: str, entry: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            _env_file=None,
            **{setting: f"ascii-key-0000000001{':acme' if setting == 'api_keys' else ''}," + entry.format(key=key)},
        )
    (problem,) = refused.value.errors()
    assert f"MEMORY_{setting.upper()} entry 2" in problem["msg"] and "visible ASCII" in problem["msg"]
    assert key not in problem["msg"]


@given(KEYS)
def test_a_key_is_taken_exactly_when_it_is_visible_ascii(key: str) -> None:
    try:
        settings = Settings(_env_file=None, api_keys=f"{key}:acme", admin_api_keys=f"admin-{key}")
    except ValidationError as refused:
        assert not visible_ascii(key)
        assert all(key not in e["msg"] for e in refused.errors())
        return
    assert visible_ascii(key)
    assert {k.key for k in settings.configured_keys()} == {key, f"admin-{key}"}
