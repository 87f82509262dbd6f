// The operator console, for administrator accounts (the management API accepts an admin's
// access_token cookie, so no API key is ever typed into a page): live sessions per stream and
// per user (refreshed every 5 s), allowed/denied decisions per minute over the last 30
// minutes, the access log with filters, tokens (search, create, suspend), events and rosters.

import { api, el, status, loginForms, whoami, accountBar, when } from "/assets/api.js";

const app = document.getElementById("app");
const REFRESH_MS = 5000;
let timer = null;

async function start() {
  if (timer) clearInterval(timer);
  app.replaceChildren();
  let me;
  try {
    me = await whoami();
  } catch (err) {
    status(err.message, "error");
    return;
  }
  if (!me) {
    loginForms(app, { done: start });
    return;
  }
  app.append(accountBar(me, start));
  if (me.account.role !== "admin") {
    app.append(el("p", { class: "card warn" }, "The console is for administrators: this account is a " + me.account.role + "."));
    return;
  }
  const sessions = el("section", { class: "card", id: "sessions", "aria-labelledby": "sessions-title" });
  const chart = el("section", { class: "card", id: "chart", "aria-labelledby": "chart-title" });
  const log = el("section", { class: "card", id: "log", "aria-labelledby": "log-title" });
  const tokens = el("section", { class: "card", id: "tokens", "aria-labelledby": "tokens-title" });
  const events = el("section", { class: "card", id: "events", "aria-labelledby": "events-title" });
  app.append(el("div", { class: "grid" }, sessions, chart), log, tokens, events);
  const refresh = () => Promise.all([renderSessions(sessions), renderChart(chart)])
    .catch((err) => status(err.message, "error"));
  await refresh();
  timer = setInterval(refresh, REFRESH_MS);
  setupLog(log);
  setupTokens(tokens);
  renderEvents(events);
}

function table(headers, rows, empty) {
  if (rows.length === 0) return el("p", { class: "muted" }, empty);
  return el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))))));
}

function countBy(items, key) {
  const counts = new Map();
  for (const item of items) counts.set(item[key] ?? "—", (counts.get(item[key] ?? "—") || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

async function renderSessions(section) {
  const { items, total } = await api("GET", "/api/sessions");
  section.replaceChildren(
    el("h2", { id: "sessions-title" }, `Live sessions `, el("span", { class: "badge", id: "live-count" }, String(total))),
    el("div", { class: "grid" },
      el("div", {}, el("h3", {}, "Per stream"), table(["Stream", "Sessions"], countBy(items, "stream"), "None.")),
      el("div", {}, el("h3", {}, "Per user"), table(["User", "Sessions"], countBy(items, "user_id"), "None."))),
    el("h3", {}, "Sessions"),
    table(["Stream", "User", "Address", "Started", ""], items.map((s) => [
      s.stream, s.user_id ?? "—", s.ip, when(s.started_at), kickControls(s.id)]), "No live session."));
}

const BANS = [["0", "no ban"], ["60", "ban 1 min"], ["600", "ban 10 min"], ["3600", "ban 1 h"], ["86400", "ban 1 day"]];

// Kick: the session ends, its media server is asked to drop the player now, and with a ban the
// same token is refused on that stream for that long (DELETE /api/sessions/{id}?ban_seconds=).
function kickControls(id) {
  const ban = el("select", { class: "small", "aria-label": `Ban after kicking session ${id}` },
    BANS.map(([value, label]) => el("option", { value }, label)));
  const button = el("button", { type: "button", class: "secondary small", "data-kick": String(id) }, "Kick");
  button.addEventListener("click", async () => {
    try {
      await api("DELETE", `/api/sessions/${id}?ban_seconds=${ban.value}`);
      const banned = ban.value === "0" ? "" : `, its token banned from the stream for ${ban.selectedOptions[0].textContent.replace("ban ", "")}`;
      status(`Session ${id} kicked${banned}.`, "ok");
    } catch (err) {
      status(err.message, "error");
    }
  });
  return el("span", { class: "kick" }, ban, " ", button);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

async function renderChart(section) {
  const minutes = 30;
  const end = Math.floor(Date.now() / 60000) + 1;
  const since = new Date((end - minutes) * 60000).toISOString();
  // The access log pages at most 1000 entries: a busier half hour is drawn from its newest 1000.
  const { items, total } = await api("GET", `/api/access-logs?since=${encodeURIComponent(since)}&limit=1000`);
  const buckets = Array.from({ length: minutes }, () => ({ allowed: 0, denied: 0 }));
  for (const entry of items) {
    const index = Math.floor(Date.parse(entry.at) / 60000) - (end - minutes);
    if (index >= 0 && index < minutes) buckets[index][entry.result === "allowed" ? "allowed" : "denied"]++;
  }
  const max = Math.max(1, ...buckets.map((b) => b.allowed + b.denied));
  const width = 600, height = 180, bar = width / minutes;
  const bars = buckets.flatMap((b, i) => {
    const hAllowed = (b.allowed / max) * (height - 20);
    const hDenied = (b.denied / max) * (height - 20);
    return [
      svg("rect", { x: i * bar + 1, y: height - hAllowed, width: bar - 2, height: hAllowed, class: "allowed" }),
      svg("rect", { x: i * bar + 1, y: height - hAllowed - hDenied, width: bar - 2, height: hDenied, class: "denied" }),
    ];
  });
  const allowed = buckets.reduce((n, b) => n + b.allowed, 0);
  const denied = buckets.reduce((n, b) => n + b.denied, 0);
  section.replaceChildren(
    el("h2", { id: "chart-title" }, "Decisions per minute"),
    el("p", { class: "legend" }, el("span", { class: "key allowed" }), ` allowed ${allowed}  `,
      el("span", { class: "key denied" }), ` denied ${denied}`, total > items.length ? ` (newest ${items.length} of ${total})` : "",
      " · last 30 minutes"),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
      "aria-label": `Allowed ${allowed} and denied ${denied} decisions over the last 30 minutes` }, ...bars));
}

function setupLog(section) {
  const form = el("form", { class: "filters" },
    el("label", {}, "Result ", el("select", { name: "result" },
      el("option", { value: "" }, "any"), el("option", { value: "allowed" }, "allowed"), el("option", { value: "denied" }, "denied"))),
    el("label", {}, "Stream ", el("input", { name: "stream", size: 12 })),
    el("label", {}, "User ", el("input", { name: "user_id", size: 12 })),
    el("button", { type: "submit" }, "Filter"));
  const results = el("div", {});
  const load = async () => {
    const params = new URLSearchParams({ limit: "50" });
    for (const [k, v] of new FormData(form)) if (v) params.set(k, v);
    try {
      const { items, total } = await api("GET", `/api/access-logs?${params}`);
      results.replaceChildren(el("p", { class: "muted" }, `${total} entries, newest first`),
        table(["Time", "Result", "Reason", "Stream", "User", "Address"], items.map((e) => [
          when(e.at), el("span", { class: `pill ${e.result}` }, e.result), e.reason ?? "", e.stream, e.user_id ?? "—", e.ip]),
          "Nothing matches."));
    } catch (err) {
      status(err.message, "error");
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  section.append(el("h2", { id: "log-title" }, "Access log"), form, results);
  load();
}

function setupTokens(section) {
  const search = el("form", { class: "filters" },
    el("label", {}, "User id starts with ", el("input", { name: "q", size: 14 })),
    el("label", {}, "Status ", el("select", { name: "status" },
      el("option", { value: "" }, "any"), el("option", { value: "active" }, "active"), el("option", { value: "suspended" }, "suspended"))),
    el("button", { type: "submit" }, "Search"));
  const list = el("div", {});
  const load = async () => {
    const params = new URLSearchParams({ limit: "50" });
    for (const [k, v] of new FormData(search)) if (v) params.set(k, v);
    try {
      const { items, total } = await api("GET", `/api/tokens?${params}`);
      list.replaceChildren(el("p", { class: "muted" }, `${total} tokens`),
        table(["Id", "User", "Prefix", "Status", "Sessions", "Streams", ""], items.map((t) => [
          String(t.id), t.user_id, t.token_prefix, el("span", { class: `pill ${t.status}` }, t.status),
          t.max_sessions === 0 ? "unlimited" : String(t.max_sessions),
          t.allowed_streams.join(", ") || "any", statusButton(t, load)]), "No token matches."));
    } catch (err) {
      status(err.message, "error");
    }
  };
  search.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  const secret = el("p", { class: "secret", role: "status" });
  const create = el("form", { class: "filters" },
    el("label", {}, "User id ", el("input", { name: "user_id", required: true, size: 14 })),
    el("label", {}, "Max sessions ", el("input", { name: "max_sessions", type: "number", min: 0, value: 1, size: 4 })),
    el("label", {}, "Streams ", el("input", { name: "streams", placeholder: "live/*, news", size: 16 })),
    el("button", { type: "submit" }, "Create token"));
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(create);
    const streams = String(form.get("streams")).split(",").map((s) => s.trim()).filter(Boolean);
    try {
      const token = await api("POST", "/api/tokens", {
        user_id: form.get("user_id"), max_sessions: Number(form.get("max_sessions")), allowed_streams: streams,
      });
      secret.replaceChildren("New token (shown this once): ", el("code", {}, token.token));
      create.reset();
      load();
    } catch (err) {
      status(err.field ? `${err.field}: ${err.message}` : err.message, "error");
    }
  });
  section.append(el("h2", { id: "tokens-title" }, "Tokens"), search, list, el("h3", {}, "New token"), create, secret);
  load();
}

function statusButton(token, reload) {
  const next = token.status === "active" ? "suspended" : "active";
  const button = el("button", { type: "button", class: "secondary small" }, next === "suspended" ? "Suspend" : "Activate");
  button.addEventListener("click", async () => {
    try {
      await api("PATCH", `/api/tokens/${token.id}`, { status: next });
      reload();
    } catch (err) {
      status(err.message, "error");
    }
  });
  return button;
}

async function renderEvents(section) {
  section.replaceChildren(el("h2", { id: "events-title" }, "Events"));
  try {
    const { items } = await api("GET", "/api/events?per_page=100");
    if (items.length === 0) section.append(el("p", { class: "muted" }, "No event yet."));
    for (const event of items) {
      const roster = el("div", {});
      const details = el("details", {}, el("summary", {},
        `${event.title} · ${when(event.starts_at)} · ${event.registered}/${event.capacity} registered`), roster);
      details.addEventListener("toggle", async () => {
        if (!details.open || roster.childElementCount) return;
        for (const role of ["users", "agents", "admins"]) {
          const page = await api("GET", `/api/events/${event.id}/${role}?per_page=100`);
          roster.append(el("p", {}, el("strong", {}, `${role}: `),
            page.items.map((m) => m.username).join(", ") || "none"));
        }
      });
      section.append(details);
    }
  } catch (err) {
    status(err.message, "error");
  }
}

start();
