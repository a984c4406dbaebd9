// memorymesh's console: a client of the JSON API, like any other.
//
// Rules this file keeps (the page's Content-Security-Policy backs them up):
// - what the API returns goes on the page as text (el() appends text nodes; nothing here
//   parses markup, and no href or src is ever built from stored data);
// - the API key lives in this tab's sessionStorage and travels only in the x-api-key header
//   of same-origin fetches (credentials: "omit": no cookie is sent or needed);
// - every change goes through the API, which decides what the key may do: the console hides
//   admin pages from a tenant key, and the API refuses them anyway.
"use strict";

const KEY = "memorymesh.apiKey";
const PAGE = 50;
// counts: messages per conversation last listed; flash: a notice for the next page;
// returnTo: where a sign-in goes back to after the key was refused mid-session.
const state = { admin: false, counts: new Map(), flash: null, returnTo: null };

// ---- DOM helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else if (name === "checked") node.checked = Boolean(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A link inside the console: only ever a "#/..." route built from encoded ids.
function route(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
}

function link(text, ...parts) {
  return el("a", { href: route(...parts) }, text);
}

// Replace a node's children, leaving out the null/false of a branch not taken (replaceChildren
// itself would show them as the text "null").
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function show(...nodes) {
  fill(document.getElementById("main"), ...nodes);
}

function when(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function fixed(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : "";
}

function errorBox(error) {
  return el("div", { class: "error", role: "alert" }, describe(error));
}

function describe(error) {
  if (error instanceof ApiError) {
    const detail = error.body && (error.body.detail || error.body.title);
    return `${error.status}: ${detail || "the API refused"}`;
  }
  return String(error && error.message ? error.message : error);
}

function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// ---- the API -----------------------------------------------------------------------------

// The key was refused mid-session: the sign-in form is already up; nothing else is to be shown.
class SignedOut extends Error {}

// An action's failure, told to the person who clicked (a sign-out already told them).
function report(error) {
  if (!(error instanceof SignedOut)) window.alert(describe(error));
}

class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY);
}

async function api(method, path, { query = {}, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { "x-api-key": apiKey() || "" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  if (response.status === 401) {
    signOut("The key was refused (401): sign in again.", window.location.hash);
    throw new SignedOut("the key was refused");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 300) };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const path = (template, ...ids) => template.replace(/\{\}/g, () => encodeURIComponent(ids.shift()));

// ---- sign in / out -----------------------------------------------------------------------

async function whoAmI() {
  const me = await api("GET", "/v1/me"); // a refused key throws (401): the sign-in stays up
  state.admin = me.admin;
  document.getElementById("who").textContent = state.admin ? "admin key" : "tenant key";
  for (const item of document.querySelectorAll("[data-admin]")) item.hidden = !state.admin;
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
}

function signInPage(message) {
  const input = el("input", { type: "password", name: "api-key", autocomplete: "off", required: true, id: "api-key" });
  const problem = el("div");
  const form = el(
    "form",
    {
      class: "panel",
      id: "sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        input.value = "";
        try {
          await whoAmI();
          const target = state.returnTo || window.location.hash;
          state.returnTo = null;
          if (!target || target === "#/" || target === "#/sign-in") window.location.hash = "#/tenants";
          else if (target !== window.location.hash) window.location.hash = target;
          else render();
        } catch (error) {
          sessionStorage.removeItem(KEY);
          fill(problem, errorBox(error));
        }
      },
    },
    el("h1", {}, "Sign in"),
    el("p", { class: "muted" }, "An API key: an admin key sees every tenant, a tenant key only its own. It is kept in this tab only, until you sign out or close it."),
    el("label", {}, "API key", input),
    el("p", {}, el("button", { type: "submit", class: "primary" }, "Sign in")),
    problem,
  );
  show(message ? el("div", { class: "notice" }, message) : null, form);
  input.focus();
}

function signOut(message, returnTo) {
  state.returnTo = returnTo && returnTo !== "#/sign-in" ? returnTo : null;
  sessionStorage.removeItem(KEY);
  state.admin = false;
  state.counts.clear();
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  if (window.location.hash !== "#/sign-in") history.replaceState(null, "", "#/sign-in");
  signInPage(message);
}

// ---- tenants and conversations -----------------------------------------------------------

async function tenantsPage() {
  const list = el("tbody");
  const more = el("div", { class: "pager" });
  const load = async (after) => {
    const page = await api("GET", "/v1/tenants", { query: { after, limit: 100 } });
    for (const tenant of page.tenants) {
      list.append(el("tr", {}, el("td", { class: "mono" }, link(tenant.tenant_id, "tenant", tenant.tenant_id))));
    }
    fill(more, 
      page.next_after ? el("button", { type: "button", onclick: (e) => { e.currentTarget.disabled = true; load(page.next_after); } }, "More tenants") : null,
    );
    if (!list.children.length) list.append(el("tr", {}, el("td", { class: "muted" }, "No tenant holds a message yet.")));
  };
  show(el("h1", {}, "Tenants"), el("table", { id: "tenants" }, el("thead", {}, el("tr", {}, el("th", {}, "Tenant"))), list), more);
  await load(null);
}

async function conversationsPage(tenant) {
  const rows = el("tbody");
  const more = el("div", { class: "pager" });
  const load = async (after) => {
    const page = await api("GET", path("/v1/tenants/{}/conversations", tenant), { query: { after, limit: PAGE } });
    for (const c of page.conversations) {
      state.counts.set(`${tenant}\u0000${c.conversation_id}`, c.messages);
      rows.append(
        el(
          "tr",
          {},
          el("td", { class: "mono" }, link(c.conversation_id, "tenant", tenant, "conversation", c.conversation_id)),
          el("td", { class: "num" }, c.messages),
          el("td", { class: "num" }, c.archived),
          el("td", {}, when(c.first_at)),
          el("td", {}, when(c.last_at)),
        ),
      );
    }
    fill(more, 
      page.next_after ? el("button", { type: "button", onclick: (e) => { e.currentTarget.disabled = true; load(page.next_after); } }, "More conversations") : null,
    );
    if (!rows.children.length) rows.append(el("tr", {}, el("td", { class: "muted", colspan: 5 }, "No conversations.")));
  };
  const flash = state.flash;
  state.flash = null;
  show(
    flash,
    el("div", { class: "crumbs" }, link("Tenants", "tenants"), " / ", tenant),
    el("h1", {}, "Conversations of ", el("span", { class: "mono" }, tenant)),
    el("div", { class: "actions" }, link("Search this tenant", "search", tenant), link("Preview a context", "context", tenant)),
    el(
      "table",
      { id: "conversations" },
      el("thead", {}, el("tr", {}, ["Conversation", "Messages", "Archived", "First", "Last"].map((h, i) => el("th", { class: i && i < 3 ? "num" : null }, h)))),
      rows,
    ),
    more,
  );
  await load(null);
}

// ---- messages (a conversation's, or a user's) ---------------------------------------------

function tags(message) {
  return [
    message.pinned ? el("span", { class: "tag pinned" }, "pinned") : null,
    message.archived_at ? el("span", { class: "tag archived" }, "archived") : null,
    el("span", { class: `tag ${message.embedding_status}` }, message.embedding_status),
  ];
}

// Who the message is about and what the application attached to it, as text.
function details(message) {
  const parts = [];
  if (message.user_id) parts.push(`user ${message.user_id}`);
  if (message.metadata && Object.keys(message.metadata).length) parts.push(`metadata ${JSON.stringify(message.metadata)}`);
  return parts.length ? el("div", { class: "muted details" }, parts.join(" · ")) : null;
}

function messageRow(tenant, message, refresh) {
  const act = (label, handler, cls) =>
    el(
      "button",
      {
        type: "button",
        class: cls,
        "data-action": label.toLowerCase(),
        onclick: async () => {
          try {
            await handler();
            await refresh();
          } catch (error) {
            report(error);
          }
        },
      },
      label,
    );
  const id = message.id;
  const at = { query: { tenant_id: tenant } };
  return el(
    "tr",
    { "data-message-id": id },
    el("td", {}, when(message.created_at)),
    el("td", {}, message.role),
    el("td", { class: "content" }, message.content, details(message)),
    el("td", { class: "num" }, fixed(message.importance, 2)),
    el("td", {}, tags(message)),
    el(
      "td",
      { class: "actions" },
      message.pinned
        ? act("Unpin", () => api("PATCH", path("/v1/messages/{}", id), { ...at, body: { pinned: false } }))
        : act("Pin", () => api("PATCH", path("/v1/messages/{}", id), { ...at, body: { pinned: true } })),
      message.archived_at
        ? act("Restore", () => api("POST", path("/v1/messages/{}/restore", id), at))
        : act("Archive", () => api("POST", path("/v1/messages/{}/archive", id), at)),
      act(
        "Delete",
        async () => {
          if (await confirmAction(`Delete this ${message.role} message of ${when(message.created_at)}? It cannot be brought back.`)) {
            await api("DELETE", path("/v1/messages/{}", id), at);
          }
        },
        "danger",
      ),
    ),
  );
}

function messageTable(tenant, fetchPage, { orderable }) {
  let order = "newest";
  let cursors = [null];
  const body = el("tbody");
  const pager = el("div", { class: "pager" });
  const orderSelect = el(
    "select",
    {
      name: "order",
      onchange: () => {
        order = orderSelect.value;
        cursors = [null];
        load();
      },
    },
    el("option", { value: "newest" }, "Newest first"),
    el("option", { value: "oldest" }, "Oldest first"),
  );
  const load = async () => {
    for (const button of pager.querySelectorAll("button")) button.disabled = true; // one page turn at a time
    const cursor = cursors[cursors.length - 1];
    const page = await fetchPage({ cursor, order: orderable ? order : undefined });
    fill(body, ...page.messages.map((m) => messageRow(tenant, m, load)));
    if (!page.messages.length) body.append(el("tr", {}, el("td", { class: "muted", colspan: 6 }, "No messages.")));
    fill(pager, 
      el("span", { class: "muted" }, `Page ${cursors.length}`),
      cursors.length > 1 ? el("button", { type: "button", onclick: () => { cursors.pop(); load(); } }, "Previous") : null,
      page.next_cursor ? el("button", { type: "button", onclick: () => { cursors.push(page.next_cursor); load(); } }, "Next") : null,
    );
  };
  const table = el(
    "table",
    { id: "messages" },
    el("thead", {}, el("tr", {}, ["Created", "Role", "Content", "Importance", "Status", ""].map((h) => el("th", {}, h)))),
    body,
  );
  return { nodes: [orderable ? el("label", { class: "check" }, "Order", orderSelect) : null, table, pager], load };
}

async function conversationPage(tenant, conversation) {
  const table = messageTable(
    tenant,
    ({ cursor, order }) =>
      api("GET", path("/v1/conversations/{}/messages", conversation), {
        query: { tenant_id: tenant, limit: PAGE, cursor, order, include_archived: true },
      }),
    { orderable: true },
  );
  const erase = el(
    "button",
    {
      type: "button",
      class: "danger",
      id: "erase-conversation",
      onclick: async () => {
        const known = state.counts.get(`${tenant}\u0000${conversation}`);
        const count = known === undefined ? "all its" : String(known);
        if (!(await confirmAction(`Erase conversation "${conversation}" of tenant "${tenant}": ${count} messages and their vectors will be deleted for good.`))) return;
        try {
          const erased = await api("DELETE", path("/v1/conversations/{}", conversation), { query: { tenant_id: tenant } });
          const gone = Object.entries(erased.deleted || erased).map(([what, n]) => `${n} ${what}`).join(", ");
          state.flash = el("div", { class: "notice", id: "erased" }, `Erased conversation ${conversation}: ${gone} deleted.`);
          window.location.hash = route("tenant", tenant);
        } catch (error) {
          report(error);
        }
      },
    },
    "Erase conversation",
  );
  show(
    el("div", { class: "crumbs" }, link("Tenants", "tenants"), " / ", link(tenant, "tenant", tenant), " / ", conversation),
    el("h1", {}, "Conversation ", el("span", { class: "mono" }, conversation)),
    el("div", { class: "actions" }, erase),
    table.nodes,
  );
  await table.load();
}

async function usersPage(tenantArg, userArg) {
  const tenant = el("input", { name: "tenant_id", required: true, value: tenantArg || "" });
  const user = el("input", { name: "user_id", required: true, value: userArg || "" });
  const out = el("div");
  const form = el(
    "form",
    {
      class: "panel grid",
      id: "user-form",
      onsubmit: (event) => {
        event.preventDefault();
        window.location.hash = route("users", tenant.value.trim(), user.value.trim());
      },
    },
    el("label", {}, "Tenant", tenant),
    el("label", {}, "User", user),
    el("button", { type: "submit", class: "primary" }, "Show messages"),
  );
  show(el("h1", {}, "A user's messages"), form, out);
  if (!tenantArg || !userArg) return;
  const table = messageTable(
    tenantArg,
    ({ cursor }) =>
      api("GET", path("/v1/users/{}/messages", userArg), {
        query: { tenant_id: tenantArg, limit: PAGE, cursor, include_archived: true },
      }),
    { orderable: false },
  );
  fill(out, el("h2", {}, `Messages of user ${userArg} in ${tenantArg}, across conversations`), ...table.nodes.filter(Boolean));
  await table.load();
}

// ---- search and context ------------------------------------------------------------------

function bar(name, value) {
  // A score from 0 to 1 is drawn; a rank (1 = best) is a number, not a length.
  const known = typeof value === "number" && value >= 0 && value <= 1 && !name.endsWith("_rank");
  const fill = el("span");
  if (known) fill.style.width = `${(value * 100).toFixed(1)}%`; // CSSOM, not a style attribute: CSP allows it
  return [
    el("span", { class: "mono" }, name),
    known ? el("div", { class: `bar ${name}`, role: "meter", "aria-valuemin": 0, "aria-valuemax": 1, "aria-valuenow": value, "aria-label": name }, fill) : el("span", {}, ""),
    el("span", { class: "num" }, typeof value !== "number" ? "" : name.endsWith("_rank") ? String(value) : value.toFixed(3)),
  ];
}

function explainBars(scores, explain) {
  const rows = [];
  for (const name of ["final", "similarity", "importance", "recency"]) rows.push(...bar(name, scores[name]));
  for (const [name, value] of Object.entries(explain || {})) rows.push(...bar(name, value));
  return el("div", { class: "bars" }, rows);
}

function resultCard(result, index) {
  const m = result.message;
  return el(
    "div",
    { class: "result", "data-message-id": m.id },
    el("div", { class: "meta" }, `#${index + 1} · ${m.role} · ${when(m.created_at)} · conversation `, el("span", { class: "mono" }, link(m.conversation_id, "tenant", m.tenant_id, "conversation", m.conversation_id)), m.user_id ? ` · user ${m.user_id}` : "", " ", tags(m)),
    el("div", { class: "text" }, m.content),
    result.reason ? el("div", { class: "muted" }, result.reason) : null,
    explainBars(result.scores, result.explain),
  );
}

function filterFields(tenantValue) {
  const field = (label, name, attrs = {}) => el("label", {}, label, el("input", { name, ...attrs }));
  return [
    field("Tenant", "tenant_id", { required: true, value: tenantValue || "" }),
    el(
      "label",
      {},
      "Mode",
      el("select", { name: "mode" }, ["", "hybrid", "semantic", "keyword"].map((m) => el("option", { value: m }, m || "server default"))),
    ),
    field("Conversation", "conversation_id"),
    field("User", "user_id"),
    el(
      "label",
      {},
      "Role",
      el("select", { name: "role" }, ["", "user", "assistant", "system", "tool"].map((r) => el("option", { value: r }, r || "any"))),
    ),
    field("Min importance", "min_importance", { type: "number", min: 0, max: 1, step: 0.05 }),
    field("Since (UTC)", "since", { type: "datetime-local" }),
    field("Until (UTC)", "until", { type: "datetime-local" }),
  ];
}

function formBody(form, numbers) {
  const body = {};
  for (const [name, raw] of new FormData(form).entries()) {
    const value = String(raw).trim();
    if (!value) continue;
    if (numbers.includes(name)) body[name] = Number(value);
    else if (name === "since" || name === "until") body[name] = new Date(value + "Z").toISOString();
    else body[name] = value;
  }
  return body;
}

async function searchPage(tenantArg) {
  const out = el("div", { id: "results" });
  const form = el(
    "form",
    {
      class: "panel grid",
      id: "search-form",
      onsubmit: async (event) => {
        event.preventDefault();
        fill(out, el("p", { class: "muted" }, "Searching…"));
        try {
          const found = await api("POST", "/v1/memory/search", { body: formBody(form, ["top_k", "min_importance"]) });
          fill(out, 
            el("p", { class: "muted" }, `${found.results.length} results. Bars: each score from 0 to 1; final = the ranking's weighted sum.`),
            ...found.results.map(resultCard),
          );
        } catch (error) {
          fill(out, errorBox(error));
        }
      },
    },
    el("label", { class: "wide" }, "Query", el("input", { name: "query", required: true })),
    filterFields(tenantArg),
    el("label", {}, "Top k", el("input", { name: "top_k", type: "number", min: 1, max: 100, value: 10 })),
    el("button", { type: "submit", class: "primary" }, "Search"),
  );
  show(el("h1", {}, "Search"), form, out);
}

async function contextPage(tenantArg) {
  const out = el("div", { id: "context" });
  const form = el(
    "form",
    {
      class: "panel grid",
      id: "context-form",
      onsubmit: async (event) => {
        event.preventDefault();
        fill(out, el("p", { class: "muted" }, "Building…"));
        try {
          const built = await api("POST", "/v1/context", { body: formBody(form, ["max_tokens", "recent", "min_importance"]) });
          const t = built.tokens;
          fill(out, 
            el(
              "div",
              { class: "stats", id: "tokens" },
              [["recent", t.recent], ["memories", t.memories], ["total", t.total], ["budget", t.budget]].map(([k, v]) => el("div", { class: "stat" }, k, el("b", {}, v))),
            ),
            el("h2", {}, "Prompt"),
            el("pre", { class: "prompt" }, built.prompt || "(nothing)"),
            el("h2", {}, `Memories (${built.memories.length}; ${built.repeats_dropped} repeats dropped)`),
            ...built.memories.map((m, i) => resultCard({ ...m, message: m.message }, i)),
            el("h2", {}, `Recent turns (${built.recent.length})`),
            ...built.recent.map((r) => el("div", { class: "result" }, el("div", { class: "meta" }, `${r.message.role} · ${when(r.message.created_at)} · ${r.tokens} tokens${r.cut ? " · cut" : ""}`), el("div", { class: "text" }, r.content))),
          );
        } catch (error) {
          fill(out, errorBox(error));
        }
      },
    },
    el("label", { class: "wide" }, "Query (default: the conversation's latest user message)", el("input", { name: "query" })),
    filterFields(tenantArg),
    el("label", {}, "Token budget", el("input", { name: "max_tokens", type: "number", min: 1, value: 1000, required: true })),
    el("label", {}, "Recent turns", el("input", { name: "recent", type: "number", min: 0 })),
    el("button", { type: "submit", class: "primary" }, "Preview context"),
  );
  // The context needs the conversation: mark it required here.
  form.querySelector("input[name=conversation_id]").required = true;
  show(el("h1", {}, "Context preview"), form, out);
}

// ---- operations (admin) ------------------------------------------------------------------

function countsText(c) {
  return `examined ${c.examined}, archived ${c.archived}, deleted ${c.deleted}`;
}

async function operationsPage() {
  const queue = el("div", { class: "stats", id: "queue" });
  const queueNote = el("div");
  const runs = el("tbody");
  const runNote = el("div", { id: "retention-result" });
  const loadQueue = async () => {
    const q = await api("GET", "/v1/admin/queue");
    fill(queue, 
      ...[
        ["pending", q.pending],
        ["claimed", q.claimed],
        ["failed", q.failed],
        ["oldest pending", q.oldest_pending_age_seconds === null ? "–" : `${q.oldest_pending_age_seconds.toFixed(1)} s`],
        ["jobs queued", q.jobs_queued],
      ].map(([k, v]) => el("div", { class: "stat", "data-stat": k }, k, el("b", {}, v))),
    );
  };
  const loadRuns = async () => {
    const page = await api("GET", "/v1/admin/retention/runs");
    fill(runs, 
      ...page.runs.slice(0, 10).map((r) =>
        el(
          "tr",
          {},
          el("td", {}, when(r.started_at)),
          el("td", {}, r.trigger),
          el("td", {}, r.dry_run ? "dry run" : "run"),
          el("td", {}, countsText(r.totals)),
          el("td", {}, Object.keys(r.failed || {}).length ? `failed: ${Object.keys(r.failed).join(", ")}` : ""),
        ),
      ),
    );
    if (!runs.children.length) runs.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No run yet.")));
  };
  const retention = async (dryRun) => {
    if (!dryRun && !(await confirmAction("Run retention now on every tenant: what the policies say is archived or deleted for good."))) return;
    fill(runNote, el("p", { class: "muted" }, dryRun ? "Counting…" : "Running…"));
    try {
      const run = await api("POST", "/v1/admin/retention/run", { body: { dry_run: dryRun } });
      fill(runNote, el("div", { class: "notice" }, `${dryRun ? "Dry run" : "Run"}: ${countsText(run.totals)}`));
      await loadRuns();
    } catch (error) {
      fill(runNote, errorBox(error));
    }
  };
  show(
    el("h1", {}, "Operations"),
    el("h2", {}, "Embedding queue"),
    queue,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", onclick: loadQueue }, "Refresh"),
      el(
        "button",
        {
          type: "button",
          id: "retry-failed",
          onclick: async () => {
            try {
              const r = await api("POST", "/v1/admin/queue/retry-failed", { body: {} });
              fill(queueNote, el("div", { class: "notice" }, `${r.requeued} failed messages are pending again.`));
              await loadQueue();
            } catch (error) {
              fill(queueNote, errorBox(error));
            }
          },
        },
        "Retry failed",
      ),
    ),
    queueNote,
    el("h2", {}, "Retention"),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", id: "retention-dry-run", onclick: () => retention(true) }, "Dry run"),
      el("button", { type: "button", class: "danger", id: "retention-run", onclick: () => retention(false) }, "Run now"),
    ),
    runNote,
    el("table", {}, el("thead", {}, el("tr", {}, ["Started", "Trigger", "Kind", "Totals", ""].map((h) => el("th", {}, h)))), runs),
    el("h2", {}, "A tenant's overrides"),
    tenantOverrides(),
  );
  await Promise.all([loadQueue(), loadRuns()]);
}

function tenantOverrides() {
  const tenant = el("input", { name: "tenant_id", required: true });
  const out = el("div", { id: "overrides" });
  const load = async (event) => {
    event.preventDefault();
    const id = tenant.value.trim();
    try {
      const [policy, limit] = await Promise.all([
        api("GET", path("/v1/admin/tenants/{}/retention", id)),
        api("GET", path("/v1/admin/tenants/{}/limits", id)),
      ]);
      fill(out, overrideForms(id, policy, limit));
    } catch (error) {
      fill(out, errorBox(error));
    }
  };
  return el("div", {}, el("form", { class: "panel grid", onsubmit: load }, el("label", {}, "Tenant", tenant), el("button", { type: "submit" }, "Show")), out);
}

function policyText(p) {
  const days = (value, verb) => (value === null ? `never ${verb}` : `${verb} after ${value} days`);
  const roles = p.protected_roles.length ? p.protected_roles.join(", ") : "none";
  return `${days(p.archive_after_days, "archived")}; ${days(p.delete_after_days, "deleted")}; kept at importance ≥ ${p.importance_threshold}; roles always kept: ${roles}`;
}

function overrideForms(tenant, policy, limit) {
  const note = el("div");
  const o = policy.overrides || {};
  const number = (name, value) => el("input", { name, type: "number", min: 0, step: "any", value: value ?? "" });
  const retentionForm = el(
    "form",
    {
      class: "panel grid",
      id: "retention-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = {};
        // PUT replaces the overrides: a field left empty is not sent, so it follows the service default.
        for (const [name, raw] of new FormData(retentionForm).entries()) {
          const value = String(raw).trim();
          if (value === "") continue;
          if (name === "protected_roles") body[name] = value.split(",").map((s) => s.trim()).filter(Boolean);
          else body[name] = Number(value);
        }
        try {
          await api("PUT", path("/v1/admin/tenants/{}/retention", tenant), { body });
          fill(note, el("div", { class: "notice" }, "Retention overrides saved."));
        } catch (error) {
          fill(note, errorBox(error));
        }
      },
    },
    el("label", {}, "Archive after days", number("archive_after_days", o.archive_after_days)),
    el("label", {}, "Delete after days", number("delete_after_days", o.delete_after_days)),
    el("label", {}, "Importance threshold", number("importance_threshold", o.importance_threshold)),
    el("label", {}, "Protected roles (comma-separated)", el("input", { name: "protected_roles", value: (o.protected_roles || []).join(", ") })),
    el("button", { type: "submit" }, "Save retention"),
  );
  const rate = el("input", { name: "rate_limit", value: limit.rate_limit || "", placeholder: limit.default || "none" });
  const limitForm = el(
    "form",
    {
      class: "panel grid",
      id: "limit-form",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api("PUT", path("/v1/admin/tenants/{}/limits", tenant), { body: { rate_limit: rate.value.trim() || null } });
          fill(note, el("div", { class: "notice" }, "Rate limit saved."));
        } catch (error) {
          fill(note, errorBox(error));
        }
      },
    },
    el("label", {}, `Rate limit (default ${limit.default || "none"})`, rate),
    el("button", { type: "submit" }, "Save rate limit"),
  );
  return el(
    "div",
    {},
    el("p", { class: "muted", id: "policy" }, policy.policy ? `In force: ${policyText(policy.policy)}` : "No policy in force."),
    el("p", { class: "muted" }, "A field left empty follows the service default."),
    policy.problem ? el("div", { class: "error" }, policy.problem) : null,
    retentionForm,
    limitForm,
    note,
  );
}

// ---- API keys (admin) --------------------------------------------------------------------

async function keysPage() {
  const rows = el("tbody");
  const created = el("div", { id: "created-key" });
  const load = async () => {
    const page = await api("GET", "/v1/admin/api-keys");
    fill(rows, 
      ...page.api_keys.map((k) =>
        el(
          "tr",
          { "data-key-id": k.id },
          el("td", {}, k.name),
          el("td", { class: "mono" }, k.id),
          el("td", {}, k.admin ? "admin" : k.tenants.join(", ")),
          el("td", {}, when(k.created_at)),
          el("td", {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : ""),
          el(
            "td",
            {},
            k.revoked_at
              ? null
              : el(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    "data-action": "revoke",
                    onclick: async () => {
                      if (!(await confirmAction(`Revoke key "${k.name}" (${k.id})? Clients using it are refused from now on.`))) return;
                      try {
                        await api("DELETE", path("/v1/admin/api-keys/{}", k.id));
                        await load();
                      } catch (error) {
                        report(error);
                      }
                    },
                  },
                  "Revoke",
                ),
          ),
        ),
      ),
    );
  };
  const form = el(
    "form",
    {
      class: "panel grid",
      id: "key-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const body = {
          name: String(data.get("name") || "").trim(),
          tenants: String(data.get("tenants") || "").split(",").map((s) => s.trim()).filter(Boolean),
          admin: data.get("admin") === "on",
        };
        try {
          const key = await api("POST", "/v1/admin/api-keys", { body });
          form.reset();
          fill(created, 
            el("div", { class: "notice" }, `Key "${key.name}" created. It is shown this once: copy it now.`),
            el("div", { class: "secret", id: "new-key" }, key.key),
          );
          await load();
        } catch (error) {
          fill(created, errorBox(error));
        }
      },
    },
    el("label", {}, "Name", el("input", { name: "name", required: true })),
    el("label", {}, "Tenants (comma-separated)", el("input", { name: "tenants" })),
    el("label", { class: "check" }, el("input", { name: "admin", type: "checkbox" }), "Admin"),
    el("button", { type: "submit", class: "primary" }, "Create key"),
  );
  show(
    el("h1", {}, "API keys"),
    form,
    created,
    el("table", { id: "keys" }, el("thead", {}, el("tr", {}, ["Name", "Id", "Scope", "Created", "State", ""].map((h) => el("th", {}, h)))), rows),
  );
  await load();
}

// ---- routing -----------------------------------------------------------------------------

const ADMIN_PAGES = new Set(["operations", "keys"]);

// The route's parts, decoded; null when the link is malformed (a stray "%").
function routeParts() {
  try {
    return window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return null;
  }
}

const NAV_OF = { tenant: "tenants", "": "tenants" };

let rendering = 0; // each render's number: a slow page's late answer never replaces a newer page

async function render() {
  const mine = ++rendering;
  const parts = routeParts();
  const section = parts ? NAV_OF[parts[0] || ""] || parts[0] : "";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#/${section}`);
  if (!apiKey()) return signInPage();
  if (parts === null) return show(el("div", { class: "error", role: "alert", id: "bad-link" }, "This link is malformed."), link("Tenants", "tenants"));
  const [page, ...args] = parts;
  if (ADMIN_PAGES.has(page) && !state.admin) {
    return show(el("h1", {}, "Admin only"), el("div", { class: "error", role: "alert", id: "admin-only" }, "This page needs an admin key; this key is a tenant's."));
  }
  try {
    if (page === "tenant" && args.length === 1) return await conversationsPage(args[0]);
    if (page === "tenant" && args[1] === "conversation" && args.length === 3) return await conversationPage(args[0], args[2]);
    if (page === "search") return await searchPage(args[0]);
    if (page === "context") return await contextPage(args[0]);
    if (page === "users") return await usersPage(args[0], args[1]);
    if (page === "operations") return await operationsPage();
    if (page === "keys") return await keysPage();
    return await tenantsPage();
  } catch (error) {
    if (mine === rendering && !(error instanceof SignedOut)) show(errorBox(error));
  }
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out: the key is forgotten."));
  window.addEventListener("hashchange", render);
  if (apiKey()) {
    try {
      await whoAmI();
    } catch (error) {
      return signOut(describe(error));
    }
  }
  await render();
}

start();
