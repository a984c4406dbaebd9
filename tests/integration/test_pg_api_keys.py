import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.api_keys import PgApiKeyStore
from application.api_keys import ManageApiKeys
from domain.access import Principal
from domain.errors import ValidationFailed


async def test_keys_resolve_to_their_principal_and_only_the_hash_is_stored(database):
    store = PgApiKeyStore(database)
    created = await store.create("ci", frozenset({"acme", "globex"}), admin=False)

    principal = await store.resolve(created.key)
    assert principal is not None
    assert principal.tenants == frozenset({"acme", "globex"}) and not principal.admin
    assert await store.resolve(created.key + "x") is None
    stored = await database.pool.fetchval("SELECT key_hash FROM api_keys WHERE id = $1::uuid", created.id)
    assert created.key.encode() not in stored and len(stored) == 32


async def test_a_revoked_key_no_longer_resolves(database):
    store = PgApiKeyStore(database)
    created = await store.create("old", frozenset({"acme"}), admin=False)
    await database.pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid", created.id)
    assert await store.resolve(created.key) is None


async def test_the_first_key_is_created_once_however_many_processes_race(database):
    await database.pool.execute("UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL")
    store = PgApiKeyStore(database)

    created = await asyncio.gather(*(store.create_first("bootstrap", frozenset(), admin=True) for _ in range(6)))

    winners = [c for c in created if c is not None]
    assert len(winners) == 1
    assert (await store.resolve(winners[0].key)).admin
    assert await store.create_first("again", frozenset(), admin=True) is None


async def test_revoked_keys_are_refused_at_once_and_listed_without_secrets(database):
    store = PgApiKeyStore(database)
    created = await store.create("ci bot", frozenset({"acme"}), admin=False)
    assert await store.resolve(created.key) is not None

    assert await store.revoke(created.id) is True
    assert await store.resolve(created.key) is None  # no cache: every process sees it on its next request
    (info,) = [k for k in await store.list_keys() if k.id == created.id]
    assert info.name == "ci bot" and info.tenants == frozenset({"acme"}) and info.revoked_at is not None
    assert await store.revoke(created.id) is True  # revoking twice is harmless
    assert await store.revoke("00000000-0000-0000-0000-000000000000") is False
    assert await store.revoke("not-a-uuid") is False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(exclude_categories=()), max_size=210))  # NUL and lone surrogates too
async def test_any_key_name_is_kept_as_given_or_refused_naming_it(database, name):
    keys = ManageApiKeys(PgApiKeyStore(database))
    admin = Principal(key_id="admin", tenants=frozenset(), admin=True)
    try:
        created = await keys.create(admin, name, frozenset({"acme"}), admin=False)
    except ValidationFailed as refused:
        assert {p.field for p in refused.problems} == {"name"}
        return
    (listed,) = [k for k in await keys.list_keys(admin) if k.id == created.id]
    assert listed.name == name.strip()
