"""/docs and /console in a real browser against a real server: they render with every asset
from the service, a person can browse, search, act and administer through them, stored
content is shown as text and never run, and a tenant key sees only its tenant."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ACME_KEY, ADMIN_KEY, GLOBEX_KEY, Watched, sign_in
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.slow

HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "javascript:window.__pwned = 'link'",
    "<a href=\"javascript:window.__pwned='a'\">click me</a><style>body{display:none}</style>",
]
SECRET = "globex-only-launch-code-5521"


def store(client: httpx.Client, tenant: str, conversation: str, content: str, **fields) -> dict:
    response = client.post(
        "/v1/messages",
        params={"wait": "true"},
        json={"tenant_id": tenant, "conversation_id": conversation, "role": "user", "content": content, **fields},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def seeded(server: ServerProcess) -> dict[str, dict]:
    with server.client(ADMIN_KEY) as admin:
        stored = {
            "tea": store(admin, "acme", "trip", "I prefer green tea in the morning", created_at="2026-11-01T08:00:00Z"),
            "flight": store(admin, "acme", "trip", "Our flight to Lisbon leaves at 7am on Friday"),
            "hotel": store(admin, "acme", "trip", "The hotel is near the river, room 412", role="assistant"),
            "work": store(admin, "acme", "work", "The quarterly report is due on the 15th"),
            "secret": store(admin, "globex", "plans", f"The {SECRET} is kept in the safe"),
        }
        for i, content in enumerate(HOSTILE):
            stored[f"hostile{i}"] = store(admin, "acme", "hostile", content, metadata={"html": content})
    return stored


def test_docs_render_offline_with_every_asset_from_the_service(watched: Watched) -> None:
    page = watched.page
    response = page.goto(f"{watched.origin}/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("memorymesh", timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/v1/memory/search").first).to_be_visible()
    watched.screenshot("docs")
    watched.assert_clean()


def test_sign_in_browse_a_conversation_pin_archive_and_restore(watched: Watched, server: ServerProcess, seeded) -> None:
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    assert ADMIN_KEY not in page.url
    expect(page.locator("#who")).to_have_text("admin key")
    expect(page.locator("#tenants")).to_contain_text("acme")
    expect(page.locator("#tenants")).to_contain_text("globex")  # an admin sees every tenant
    page.click("#tenants a:text-is('acme')")
    expect(page.locator("#conversations")).to_contain_text("trip")
    row = page.locator("#conversations tr", has_text="trip")
    expect(row.locator("td").nth(1)).to_have_text("3")  # its three messages
    row.locator("a").click()

    messages = page.locator("#messages tbody tr")
    expect(messages).to_have_count(3)
    expect(messages.first).to_contain_text("hotel")  # newest first by default
    page.select_option("select[name=order]", "oldest")
    expect(messages.first).to_contain_text("green tea")
    watched.screenshot("conversation")

    tea = page.locator(f"tr[data-message-id='{seeded['tea']['id']}']")
    tea.locator("button[data-action=pin]").click()
    expect(tea.locator(".tag.pinned")).to_be_visible()
    with server.client(ADMIN_KEY) as admin:
        stored = admin.get(f"/v1/messages/{seeded['tea']['id']}", params={"tenant_id": "acme"}).json()
    assert stored["pinned"] is True

    tea.locator("button[data-action=archive]").click()
    expect(tea.locator(".tag.archived")).to_be_visible()
    with server.client(ADMIN_KEY) as admin:
        found = admin.get("/v1/memory/search", params={"tenant_id": "acme", "query": "green tea", "top_k": 10})
        assert seeded["tea"]["id"] not in [r["message"]["id"] for r in found.json()["results"]]
    tea.locator("button[data-action=restore]").click()
    expect(tea.locator(".tag.archived")).to_have_count(0)
    tea.locator("button[data-action=unpin]").click()
    expect(tea.locator(".tag.pinned")).to_have_count(0)
    watched.assert_clean()


def test_search_shows_each_results_score_parts_as_bars(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/search/acme")
    page.fill("#search-form input[name=query]", "When does the flight to Lisbon leave?")
    page.select_option("#search-form select[name=mode]", "hybrid")
    page.click("#search-form button[type=submit]")
    first = page.locator("#results .result").first
    expect(first).to_contain_text("flight to Lisbon")
    bars = first.locator(".bar[role=meter]")
    assert bars.count() >= 4  # final, similarity, importance, recency, and the explain parts
    final = first.locator(".bar.final")
    value = float(final.get_attribute("aria-valuenow") or "nan")
    assert 0 < value <= 1
    width = final.locator("span").evaluate("e => e.getBoundingClientRect().width")
    whole = final.evaluate("e => e.getBoundingClientRect().width")
    assert width == pytest.approx(whole * value, abs=2)  # the bar is drawn to its value
    assert page.locator("#results").inner_text().count(SECRET) == 0
    watched.screenshot("search")
    watched.assert_clean()


def test_stored_html_and_script_are_shown_as_text_never_run(watched: Watched, seeded) -> None:
    page = watched.page
    page.on("dialog", lambda dialog: (watched.dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/tenant/acme/conversation/hostile")
    table = page.locator("#messages")
    for content in HOSTILE:
        expect(table).to_contain_text(content)  # the very characters, as text
    assert table.locator("img, script, a[href^='javascript'], style").count() == 0
    page.goto(f"{watched.origin}/console#/search/acme")
    page.fill("#search-form input[name=query]", "pwned script onerror javascript")
    page.select_option("#search-form select[name=mode]", "semantic")
    page.click("#search-form button[type=submit]")
    expect(page.locator("#results .result").first).to_be_visible()
    assert page.locator("#results").locator("img, script, a[href^='javascript'], style").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert watched.dialogs == []
    expect(page.locator("body")).to_be_visible()  # the stored <style> did not hide the page
    watched.screenshot("hostile")
    watched.assert_clean()


def test_operations_show_the_queue_and_run_a_retention_dry_run(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/operations")
    expect(page.locator("#queue [data-stat=pending] b")).to_have_text("0")  # every message was stored with wait
    page.click("#retention-dry-run")
    counts = re.compile(r"Dry run: examined \d+, archived \d+, deleted \d+")
    expect(page.locator("#retention-result")).to_contain_text(counts)
    expect(page.locator("table", has_text="dry run")).to_be_visible()
    watched.screenshot("operations")
    watched.assert_clean()


def test_create_a_key_shown_once_then_revoke_it(watched: Watched, server: ServerProcess) -> None:
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/keys")
    page.fill("#key-form input[name=name]", "browser-made")
    page.fill("#key-form input[name=tenants]", "acme")
    page.click("#key-form button[type=submit]")
    key = page.locator("#new-key").inner_text().strip()
    assert len(key) >= 20
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}) as client:
        assert client.get("/v1/conversations/trip/messages", params={"tenant_id": "acme"}).status_code == 200
        assert client.get("/v1/conversations/plans/messages", params={"tenant_id": "globex"}).status_code == 403
    watched.screenshot("key-created")

    row = page.locator("#keys tr", has_text="browser-made")
    row.locator("button[data-action=revoke]").click()
    expect(page.locator("#confirm-text")).to_contain_text("browser-made")  # the confirmation names it
    page.click("#confirm-ok")
    expect(row).to_contain_text("revoked")
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}) as client:
        assert client.get("/v1/conversations/trip/messages", params={"tenant_id": "acme"}).status_code == 401
    page.reload()
    expect(page.locator("#keys")).to_be_visible()
    assert key not in page.content()  # shown that once only
    watched.assert_clean()


def test_a_tenant_key_sees_only_its_tenant_and_no_admin_page(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, ACME_KEY)
    expect(page.locator("#who")).to_have_text("tenant key")
    expect(page.locator("nav a[href='#/operations']")).to_be_hidden()
    expect(page.locator("#tenants")).to_contain_text("acme")
    assert "globex" not in page.locator("#tenants").inner_text()
    for admin_page in ("operations", "keys"):
        page.goto(f"{watched.origin}/console#/{admin_page}")
        expect(page.locator("#admin-only")).to_be_visible()
    page.goto(f"{watched.origin}/console#/tenant/globex/conversation/plans")
    expect(page.locator(".error")).to_contain_text("403")
    assert SECRET not in page.content()
    watched.screenshot("tenant-key")
    # The API refuses the admin routes to this key whatever the page shows.
    status = page.evaluate(
        "key => fetch('/v1/admin/api-keys', {headers: {'x-api-key': key}}).then(r => r.status)", ACME_KEY
    )
    assert status == 403
    # Refused, as expected: globex's conversation, and the fetch above.
    expected = {"/v1/conversations/plans/messages", "/v1/admin/api-keys"}
    watched.assert_clean({(403, path) for path in expected})


def test_the_key_stays_in_the_tab_and_sign_out_forgets_it(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, GLOBEX_KEY)
    assert page.evaluate("sessionStorage.getItem('memorymesh.apiKey')") == GLOBEX_KEY
    assert watched.context.cookies() == []
    assert GLOBEX_KEY not in page.url
    page.reload()  # the tab remembers it
    expect(page.locator("#tenants")).to_contain_text("globex")
    page.click("#sign-out")
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('memorymesh.apiKey')") is None
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()
    watched.assert_clean()


def test_erasing_a_conversation_asks_first_naming_it(watched: Watched, server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        for i in range(2):
            store(admin, "acme", "to-erase", f"Temporary note {i}")
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.click("#tenants a:text-is('acme')")
    page.locator("#conversations a:text-is('to-erase')").click()
    page.click("#erase-conversation")
    expect(page.locator("#confirm-text")).to_contain_text('"to-erase" of tenant "acme": 2 messages')
    page.click("#confirm dialog button[value=cancel], #confirm button[value=cancel]")
    with server.client(ADMIN_KEY) as admin:
        kept = admin.get("/v1/conversations/to-erase/messages", params={"tenant_id": "acme"}).json()["messages"]
    assert len(kept) == 2
    page.click("#erase-conversation")
    page.click("#confirm-ok")
    expect(page.locator("#erased")).to_contain_text("to-erase")
    with server.client(ADMIN_KEY) as admin:
        assert admin.get("/v1/conversations/to-erase/messages", params={"tenant_id": "acme"}).json()["messages"] == []
    watched.assert_clean()


def test_the_console_weighs_little_on_first_load(watched: Watched) -> None:
    page = watched.page
    page.goto(f"{watched.origin}/console")
    expect(page.locator("#sign-in")).to_be_visible()
    page.wait_for_load_state("networkidle")
    print(f"console first load: {watched.bytes_received} bytes")
    assert 0 < watched.bytes_received < 100_000
    watched.screenshot("sign-in")
    watched.assert_clean()


def test_context_preview_shows_the_prompt_within_its_token_budget(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, ACME_KEY)
    page.goto(f"{watched.origin}/console#/context/acme")
    page.fill("#context-form input[name=conversation_id]", "trip")
    page.fill("#context-form input[name=query]", "When does the flight leave?")
    page.fill("#context-form input[name=max_tokens]", "300")
    page.click("#context-form button[type=submit]")
    tokens = page.locator("#tokens")
    expect(tokens).to_contain_text("budget")
    total = int(tokens.locator(".stat", has_text="total").locator("b").inner_text())
    budget = int(tokens.locator(".stat", has_text="budget").locator("b").inner_text())
    assert budget == 300 and 0 < total <= budget
    expect(page.locator("#context pre.prompt")).to_contain_text("Lisbon")
    watched.screenshot("context")
    watched.assert_clean()


def test_a_users_messages_and_a_tenants_overrides(watched: Watched, server: ServerProcess) -> None:
    with server.client(ADMIN_KEY) as admin:
        store(admin, "acme", "diet", "Alice is allergic to peanuts", user_id="alice")
        store(admin, "acme", "menu", "Alice asked for the vegan menu", user_id="alice")
        store(admin, "acme", "menu", "Bob wants extra cheese", user_id="bob")
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/users/acme/alice")
    rows = page.locator("#messages tbody tr")
    expect(rows).to_have_count(2)
    assert "Bob" not in page.locator("#messages").inner_text()

    page.goto(f"{watched.origin}/console#/operations")
    page.fill("#overrides ~ * input, form input[name=tenant_id]", "acme")
    page.locator("form", has=page.locator("input[name=tenant_id]")).locator("button").click()
    page.fill("#retention-form input[name=archive_after_days]", "90")
    page.click("#retention-form button[type=submit]")
    expect(page.locator("#overrides .notice")).to_contain_text("saved")
    with server.client(ADMIN_KEY) as admin:
        assert admin.get("/v1/admin/tenants/acme/retention").json()["overrides"]["archive_after_days"] == 90
    watched.assert_clean()


def test_a_malformed_link_says_so_and_the_console_goes_on(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/tenant/%E0%A4%A")  # decodeURIComponent throws on it
    expect(page.locator("#bad-link")).to_be_visible()
    page.click("nav a[href='#/tenants']")
    expect(page.locator("#tenants")).to_contain_text("acme")
    watched.assert_clean()


def test_a_key_revoked_mid_session_brings_back_the_sign_in_and_then_the_page(
    watched: Watched, server: ServerProcess, seeded
) -> None:
    with server.client(ADMIN_KEY) as admin:
        made = admin.post("/v1/admin/api-keys", json={"name": "short-lived", "tenants": ["acme"]}).json()
    page = watched.page
    sign_in(watched, made["key"])
    expect(page.locator("#tenants")).to_contain_text("acme")
    with server.client(ADMIN_KEY) as admin:
        assert admin.delete(f"/v1/admin/api-keys/{made['id']}").status_code == 204
    page.click("#tenants a:text-is('acme')")
    expect(page.locator("#sign-in")).to_be_visible()  # not a bare error with no way on
    expect(page.locator("main")).to_contain_text("401")
    page.fill("#api-key", ADMIN_KEY)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#conversations")).to_contain_text("trip")  # back where the click went
    watched.assert_clean({(401, "/v1/tenants/acme/conversations")})


def test_a_slow_page_never_replaces_the_one_opened_after_it(watched: Watched, seeded) -> None:
    page = watched.page
    sign_in(watched, ACME_KEY)
    page.route("**/v1/tenants/globex/conversations*", lambda route: (page.wait_for_timeout(1500), route.continue_()))
    page.goto(f"{watched.origin}/console#/tenant/globex")
    page.goto(f"{watched.origin}/console#/tenant/acme")
    expect(page.locator("#conversations")).to_contain_text("trip")
    page.wait_for_timeout(2500)  # the globex answer (403) arrives meanwhile
    expect(page.locator("#conversations")).to_contain_text("trip")
    assert page.locator(".error").count() == 0
    watched.assert_clean({(403, "/v1/tenants/globex/conversations")})


def test_pages_of_a_long_conversation_turn_one_at_a_time(watched: Watched, server: ServerProcess) -> None:
    turns = [
        {"tenant_id": "acme", "conversation_id": "long", "role": "user", "content": f"Line {i:03d} of the log"}
        for i in range(120)
    ]
    with server.client(ADMIN_KEY) as admin:
        stored = admin.post("/v1/messages/batch", params={"wait": "true"}, json={"messages": turns})
        assert stored.status_code in (201, 202), stored.text
    page = watched.page
    sign_in(watched, ADMIN_KEY)
    page.goto(f"{watched.origin}/console#/tenant/acme/conversation/long")
    page.select_option("select[name=order]", "oldest")
    rows = page.locator("#messages tbody tr")
    expect(rows.first).to_contain_text("Line 000")
    page.locator(".pager button", has_text="Next").dblclick()
    expect(page.locator(".pager")).to_contain_text("Page 2")
    expect(rows.first).to_contain_text("Line 050")
    page.locator(".pager button", has_text="Next").click()
    expect(page.locator(".pager")).to_contain_text("Page 3")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("Line 100")
    page.locator(".pager button", has_text="Previous").click()
    expect(rows.first).to_contain_text("Line 050")
    watched.assert_clean()
