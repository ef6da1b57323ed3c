// The dashboard's single-page app: hash routes, API calls, views and charts.
// Talks only to this origin's /api/v1 (bearer token kept in sessionStorage, never in
// localStorage); builds the DOM with textContent only (no innerHTML of API data); states the
// view's purpose in X-Shuxin-Purpose on every request, so the audit log records why.
import { cellLabel, lang, setLang, t, translatePage } from "./i18n.js";

const TOKEN_KEY = "shuxin.token";
const PAGE_SIZE = 50;
const charts = new Set();

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

function table(headers, rows) {
  if (!rows.length) return h("p", { class: "meta" }, t("none"));
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((head) => h("th", {}, head)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))))),
  );
}

function num(value) {
  return h("td", { class: "num" }, value);
}

// ---------------------------------------------------------------- formatting with units

const UNIT_SUFFIXES = [
  ["_bpm", "unit_bpm"],
  ["_ms", "unit_ms"],
  ["_us", "unit_us"],
  ["_pct", "unit_pct"],
  ["_s", "unit_s"],
];

function unitOf(key) {
  if (key.startsWith("ln_")) return "ln ms";
  if (key.endsWith("per_min")) return lang() === "en" ? "/min" : "次/分";
  for (const [suffix, unit] of UNIT_SUFFIXES) if (key.endsWith(suffix)) return t(unit);
  return "";
}

function fmtNumber(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

function fmtValue(key, value) {
  const unit = unitOf(key);
  const text = fmtNumber(value);
  return text === "—" || !unit ? text : `${text} ${unit}`;
}

function fmtTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(lang() === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

function fmtDuration(seconds) {
  return seconds === null || seconds === undefined ? "—" : `${Math.round(seconds)} ${t("unit_s")}`;
}

function qualityBadge(ok) {
  if (ok === null || ok === undefined) return h("span", { class: "badge muted" }, "—");
  return h("span", { class: ok ? "badge" : "badge bad" }, t(ok ? "quality_ok" : "quality_bad"));
}

// ---------------------------------------------------------------- API

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let purpose = "";

async function api(path, { method = "GET", body = null, form = null } = {}) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  // Header values must be ISO-8859-1: the purpose is sent percent-encoded when it is not.
  if (purpose) headers["X-Shuxin-Purpose"] = /^[\x20-\x7e]*$/.test(purpose) ? purpose : encodeURIComponent(purpose);
  let payload = null;
  if (form) payload = new URLSearchParams(form);
  else if (body) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: String(response.status), message: response.statusText };
    if (response.status === 401 && !form) {
      sessionStorage.removeItem(TOKEN_KEY);
      me = null;
    }
    throw new ApiFailure(response.status, error.code, error.message);
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

function showError(error) {
  const box = document.getElementById("error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.hidden = false;
  box.textContent = error instanceof ApiFailure ? `${error.message} (${error.code})` : String(error.message ?? error);
}

// ---------------------------------------------------------------- session and navigation

let me = null;

const NAV = [
  { route: "sessions", label: "nav_sessions", any: ["session:read", "session:list-today"] },
  { route: "alerts", label: "nav_alerts", any: ["alert:read"] },
  { route: "stations", label: "nav_stations", any: ["station:read"] },
  { route: "reports", label: "nav_reports", any: ["report:read"] },
  { route: "audit", label: "nav_audit", any: ["audit:read"] },
  { route: "org", label: "nav_org", any: ["org:admin"] },
];

function can(permission) {
  return Boolean(me && me.permissions.includes(permission));
}

function allowedNav() {
  return NAV.filter((item) => item.any.some(can));
}

function renderChrome() {
  const nav = document.getElementById("nav");
  const current = location.hash.slice(2).split(/[/?]/)[0];
  nav.replaceChildren(
    ...(me ? allowedNav() : []).map((item) =>
      h("a", { href: `#/${item.route}`, class: item.route === current ? "active" : null }, t(item.label)),
    ),
  );
  document.getElementById("who").textContent = me ? `${me.username} · ${me.org_unit_name}` : "";
  document.getElementById("logout").hidden = !me;
  translatePage();
}

function parseRoute() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Bumped by every navigation: a view whose data arrives after the user moved on is dropped.
let generation = 0;

async function route() {
  const mine = ++generation;
  showError(null);
  for (const chart of charts) chart.dispose();
  charts.clear();
  const view = document.getElementById("view");
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    me = null;
    renderChrome();
    view.replaceChildren(loginView());
    return;
  }
  try {
    if (!me) {
      purpose = "";
      const who = await api("/api/v1/me");
      if (mine !== generation) return;
      me = who;
    }
  } catch (error) {
    if (mine !== generation) return;
    renderChrome();
    view.replaceChildren(loginView());
    showError(error);
    return;
  }
  const { parts, params } = parseRoute();
  const allowed = allowedNav();
  const reachable = [...allowed, ...(can("trend:read") ? [{ route: "subjects" }] : [])];
  if (!reachable.some((item) => item.route === parts[0])) {
    if (allowed.length) go(`#/${allowed[0].route}`);
    else view.replaceChildren(h("p", {}, t("none")));
    return;
  }
  renderChrome();
  view.replaceChildren(h("p", { class: "meta" }, t("loading")));
  try {
    const content = await VIEWS[parts[0]](parts.slice(1), params);
    if (mine !== generation) return;
    view.replaceChildren(...[content].flat());
    drawCharts(view);
  } catch (error) {
    if (mine !== generation) return;
    view.replaceChildren();
    showError(error);
  }
}

// ---------------------------------------------------------------- login

function loginView() {
  const form = h(
    "form",
    { class: "card login", autocomplete: "on" },
    h("h2", {}, t("login")),
    h("label", {}, t("username"), h("input", { name: "username", required: true, autocomplete: "username", maxlength: 128 })),
    h("label", {}, t("password"), h("input", { name: "password", type: "password", required: true, autocomplete: "current-password", maxlength: 1024 })),
    h("button", { type: "submit" }, t("login")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(null);
    const fields = new FormData(form);
    try {
      purpose = "";
      const issued = await api("/api/v1/auth/token", {
        method: "POST",
        form: { username: fields.get("username"), password: fields.get("password") },
      });
      sessionStorage.setItem(TOKEN_KEY, issued.access_token);
      me = null;
      go("#/");
    } catch (error) {
      showError(error);
    }
  });
  return form;
}

// ---------------------------------------------------------------- charts

// Chart options waiting for their box to be in the document (ECharts needs its size).
const chartOptions = new WeakMap();

function chartBox(name) {
  return h("div", { class: "chart", dataset: { chart: name } });
}

function drawLater(box, option) {
  chartOptions.set(box, option);
}

function drawCharts(root) {
  for (const box of root.querySelectorAll("[data-chart]")) {
    const option = chartOptions.get(box);
    if (!option) continue;
    const chart = echarts.init(box, null, { renderer: "canvas" });
    chart.setOption(option);
    charts.add(chart);
  }
}

window.addEventListener("resize", () => {
  for (const chart of charts) chart.resize();
});
window.addEventListener("beforeprint", () => {
  for (const chart of charts) chart.resize();
});

function offsetSeconds(value, startMs) {
  if (typeof value === "number") return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : (ms - startMs) / 1000;
}

const BAND_COLOURS = { baseline: "#7fb3d522", training: "#3a9d5d22", recovery: "#e3b53b22" };

// Each phase's [from, to] in seconds since the session start: the recorded times, else the
// planned durations laid end to end (a session whose phase events were not received).
function phaseWindows(session, startMs) {
  let planned = 0;
  return (session.phases || []).map((phase) => {
    const from = phase.started_at ? offsetSeconds(phase.started_at, startMs) : planned;
    let to = phase.ended_at ? offsetSeconds(phase.ended_at, startMs) : null;
    if (to === null) to = from + (phase.planned_duration_s || 0);
    planned = to;
    return { phase, from, to };
  });
}

function phaseBands(session, startMs) {
  return phaseWindows(session, startMs).map(({ phase, from, to }) => [
    { name: phase.name, xAxis: from, itemStyle: { color: BAND_COLOURS[phase.kind] || "#8a99a822" } },
    { xAxis: to },
  ]);
}

function markerLines(session, startMs) {
  const lines = [];
  for (const event of session.events || []) {
    const x = offsetSeconds(event.t, startMs);
    if (x !== null) lines.push({ name: event.kind, xAxis: x });
  }
  for (const rating of session.ratings || []) {
    const x = rating.t === null || rating.t === undefined ? null : offsetSeconds(rating.t, startMs);
    if (x !== null) lines.push({ name: `${rating.scale} ${rating.value}`, xAxis: x });
  }
  return lines;
}

// Per-phase values as a step series, when no display curve of that metric exists.
function phaseSteps(session, startMs, key) {
  const data = [];
  for (const { phase, from, to } of phaseWindows(session, startMs)) {
    const value = phase.metrics ? phase.metrics[key] : null;
    if (value === null || value === undefined) continue;
    data.push([from, value], [to, value], [to, null]);
  }
  return data;
}

function sessionChart(session, startMs, title, key, unit, curveNames) {
  const curves = session.curves || {};
  const curveName = curveNames.find((name) => curves[name]);
  let data;
  if (curveName) {
    const curve = curves[curveName];
    data = curve.t_offset_s.map((x, i) => [x, curve.values[i]]);
  } else data = phaseSteps(session, startMs, key);
  const box = chartBox(key);
  drawLater(box, {
    animation: false,
    title: { text: `${title} (${unit})`, textStyle: { fontSize: 13 } },
    tooltip: { trigger: "axis" },
    grid: { left: 50, right: 20, top: 40, bottom: 40 },
    xAxis: { type: "value", name: t("unit_s"), min: 0 },
    yAxis: { type: "value", name: unit, scale: true },
    series: [
      {
        name: title,
        type: "line",
        showSymbol: false,
        connectNulls: false,
        data,
        markArea: { silent: true, label: { fontSize: 10, position: "insideTop" }, data: phaseBands(session, startMs) },
        markLine: { silent: true, symbol: "none", label: { fontSize: 10 }, lineStyle: { type: "dashed" }, data: markerLines(session, startMs) },
      },
    ],
  });
  return box;
}

// ---------------------------------------------------------------- views

function pager(count, offset, onPage) {
  const from = count ? offset + 1 : 0;
  const to = Math.min(offset + PAGE_SIZE, count);
  return h(
    "div",
    { class: "pager" },
    h("button", { type: "button", disabled: offset <= 0, onclick: () => onPage(Math.max(0, offset - PAGE_SIZE)) }, t("prev")),
    h("span", {}, t("page_of", { from, to, count })),
    h("button", { type: "button", disabled: to >= count, onclick: () => onPage(offset + PAGE_SIZE) }, t("next")),
  );
}

function routeWith(base, params) {
  return `#/${base}${query(Object.fromEntries(params))}`;
}

const VIEWS = {
  async sessions(parts, params) {
    if (parts.length) return sessionReport(parts[0]);
    purpose = t("purpose_sessions");
    const offset = Number(params.get("offset") || 0);
    const filters = {
      station: params.get("station") || "",
      subject: params.get("subject") || "",
      date_from: params.get("date_from") || "",
      date_to: params.get("date_to") || "",
    };
    const list = await api(`/api/v1/sessions${query({ ...filters, limit: PAGE_SIZE, offset })}`);
    const form = h(
      "form",
      { class: "filters" },
      h("label", {}, t("station"), h("input", { name: "station", value: filters.station, maxlength: 64 })),
      h("label", {}, t("subject"), h("input", { name: "subject", value: filters.subject, maxlength: 14, placeholder: "S-XXXXX" })),
      h("label", {}, t("date_from"), h("input", { name: "date_from", type: "date", value: filters.date_from })),
      h("label", {}, t("date_to"), h("input", { name: "date_to", type: "date", value: filters.date_to })),
      h("button", { type: "submit" }, t("filter")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      go(routeWith("sessions", new FormData(form)));
    });
    const rows = list.data.map((s) => [
      h("a", { href: `#/sessions/${encodeURIComponent(s.id)}` }, fmtTime(s.started_at)),
      s.station_id,
      can("trend:read") ? h("a", { href: `#/subjects/${encodeURIComponent(s.subject_code)}/trends` }, s.subject_code) : s.subject_code,
      s.protocol_id,
      s.status,
      num(fmtDuration(s.duration_s)),
      h("td", {}, qualityBadge(s.quality_ok)),
      num(fmtNumber(s.rating_before)),
      num(fmtNumber(s.rating_after)),
      num(fmtNumber(s.delta_lnrmssd, 3)),
    ]);
    const page = (next) => {
      const copy = new URLSearchParams(params);
      copy.set("offset", String(next));
      go(routeWith("sessions", copy));
    };
    return card(
      t("nav_sessions"),
      form,
      table(
        [t("started_at"), t("station"), t("subject"), t("protocol"), t("status"), t("duration"), t("quality"), `${t("rating_before")} (0–10)`, `${t("rating_after")} (0–10)`, `${t("delta_lnrmssd")} (ln ms)`],
        rows,
      ),
      pager(list.count, offset, page),
    );
  },

  async subjects(parts) {
    return subjectTrends(parts[0]);
  },

  async alerts(_parts, params) {
    purpose = t("purpose_alerts");
    const state = params.get("state") || "open";
    const list = await api(`/api/v1/alerts${query({ state })}`);
    const picker = h(
      "form",
      { class: "filters" },
      h(
        "label",
        {},
        t("state"),
        h(
          "select",
          { name: "state", onchange: (event) => go(`#/alerts?state=${event.target.value}`) },
          ["open", "acknowledged", "resolved"].map((value) => h("option", { value, selected: value === state }, t(`state_${value}`))),
        ),
      ),
    );
    const rows = list.data.map((alert) => {
      const note = h("textarea", { maxlength: 2000, "aria-label": t("note"), placeholder: t("note_required") });
      const act = async (verb) => {
        const text = note.value.trim();
        if (!text) {
          showError(new Error(t("note_required")));
          return;
        }
        try {
          await api(`/api/v1/alerts/${alert.id}/${verb}`, { method: "POST", body: { note: text } });
          go(`#/alerts?state=${state}`);
        } catch (error) {
          showError(error);
        }
      };
      const actions = [];
      if (can("alert:handle") && alert.state === "open") actions.push(h("button", { type: "button", dataset: { action: "acknowledge" }, onclick: () => act("acknowledge") }, t("acknowledge")));
      if (can("alert:handle") && alert.state !== "resolved") actions.push(h("button", { type: "button", dataset: { action: "resolve" }, onclick: () => act("resolve") }, t("resolve")));
      const handled = [alert.acknowledged_by, alert.acknowledge_note, alert.resolved_by, alert.resolve_note].filter(Boolean).join(" · ");
      return [
        fmtTime(alert.created_at),
        alert.kind,
        h("span", { class: alert.state === "open" ? "badge warn" : "badge muted" }, t(`state_${alert.state}`)),
        alert.subject_code && can("trend:read") ? h("a", { href: `#/subjects/${encodeURIComponent(alert.subject_code)}/trends` }, alert.subject_code) : alert.subject_code || alert.station_id || "—",
        h("pre", {}, typeof alert.explanation === "string" ? alert.explanation : JSON.stringify(alert.explanation, null, 1)),
        handled || "—",
        actions.length ? h("div", {}, note, ...actions) : "",
      ];
    });
    return card(t("nav_alerts"), picker, table([t("created_at"), t("kind"), t("state"), t("subject"), t("explanation"), t("handled_by"), ""], rows));
  },

  async stations() {
    purpose = t("purpose_stations");
    const list = await api("/api/v1/stations");
    const rows = list.data.map((station) => [
      station.name_zh ? `${station.id} · ${station.name_zh}` : station.id,
      station.org_unit_code,
      h("span", { class: station.presence === "online" ? "badge" : station.presence === "offline" ? "badge off" : "badge muted" }, t(`presence_${station.presence}`)),
      fmtTime(station.last_seen_at),
      num(fmtNumber(station.outbox_backlog)),
      num(fmtNumber(station.reconnects)),
      table(
        [t("devices"), t("kind"), t("connected"), `${t("battery")} (%)`, t("contact"), "firmware", t("last_seen")],
        (station.devices || []).map((d) => [d.device_id, d.kind, t(d.connected ? "connected" : "disconnected"), num(fmtNumber(d.battery_pct)), d.contact === null || d.contact === undefined ? "—" : String(d.contact), d.firmware || "—", fmtTime(d.last_seen_at)]),
      ),
    ]);
    return card(t("nav_stations"), table([t("station"), t("org_unit"), t("presence"), t("last_seen"), `${t("outbox_backlog")} (msgs)`, t("reconnects"), t("devices")], rows));
  },

  async reports(parts, params) {
    purpose = t("purpose_reports");
    const kind = ["daily", "weekly", "monthly"].includes(parts[0]) ? parts[0] : "daily";
    const units = await api("/api/v1/org-units");
    const unit = params.get("org_unit") || me.org_unit_code;
    const date = params.get("date") || new Date().toISOString().slice(0, 10);
    const form = h(
      "form",
      { class: "filters" },
      h("label", {}, t("reports"), h("select", { name: "kind" }, ["daily", "weekly", "monthly"].map((k) => h("option", { value: k, selected: k === kind }, t(`report_${k}`))))),
      h("label", {}, t("org_unit"), h("select", { name: "org_unit" }, units.data.map((u) => h("option", { value: u.code, selected: u.code === unit }, `${u.name_zh} (${u.code})`)))),
      h("label", {}, t("date"), h("input", { name: "date", type: "date", value: date, required: true })),
      h("button", { type: "submit" }, t("show")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = new FormData(form);
      go(`#/reports/${fields.get("kind")}${query({ org_unit: fields.get("org_unit"), date: fields.get("date") })}`);
    });
    const report = await api(`/api/v1/reports/${kind}${query({ org_unit: unit, date })}`);
    const cell = (name, c) => {
      if (!c || c.suppressed) return h("td", { class: "num suppressed", dataset: { suppressed: "true" }, title: c && c.reason ? c.reason : "" }, t("suppressed"));
      return num(name.endsWith("_pct") ? `${fmtNumber(c.value, 1)} %` : fmtNumber(c.value));
    };
    const names = Object.keys(report.cells || {});
    const summary = table([t("cell"), t("value")], names.map((name) => [cellLabel(name), cell(name, report.cells[name])]));
    const children = (report.rows || []).length
      ? table([t("org_unit"), ...names.map(cellLabel)], report.rows.map((row) => [`${row.name_zh} (${row.org_unit_code})`, ...names.map((name) => cell(name, row.cells[name]))]))
      : null;
    const distributions = Object.entries(report.distributions || {}).map(([name, d]) =>
      d.suppressed
        ? [cellLabel(name), h("td", { class: "suppressed", colspan: 6, dataset: { suppressed: "true" } }, t("suppressed"))]
        : [cellLabel(name), num(fmtNumber(d.n)), num(fmtNumber(d.p10, 3)), num(fmtNumber(d.p25, 3)), num(fmtNumber(d.median, 3)), num(fmtNumber(d.p75, 3)), num(fmtNumber(d.p90, 3))],
    );
    return [
      card(t("reports"), form),
      card(
        `${t(`report_${report.kind}`)} · ${report.org_unit.name_zh} (${report.org_unit.code})`,
        h("p", { class: "meta" }, `${t("period")}: ${report.period.start} – ${report.period.end} · k ≥ ${report.k_min} ${t("unit_people")}`),
        summary,
        children,
      ),
      distributions.length ? card(t("distributions"), table([t("cell"), `n (${t("unit_people")})`, "P10", "P25", "P50", "P75", "P90"], distributions)) : null,
    ].filter(Boolean);
  },

  async audit(_parts, params) {
    purpose = t("purpose_audit");
    const offset = Number(params.get("offset") || 0);
    const filters = { subject: params.get("subject") || "", actor: params.get("actor") || "", action: params.get("action") || "" };
    const list = await api(`/api/v1/audit${query({ ...filters, limit: PAGE_SIZE, offset })}`);
    const form = h(
      "form",
      { class: "filters" },
      h("label", {}, t("subject"), h("input", { name: "subject", value: filters.subject, maxlength: 14 })),
      h("label", {}, t("actor"), h("input", { name: "actor", value: filters.actor, maxlength: 140 })),
      h("label", {}, t("action"), h("input", { name: "action", value: filters.action, maxlength: 64 })),
      h("button", { type: "submit" }, t("filter")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      go(routeWith("audit", new FormData(form)));
    });
    const page = (next) => {
      const copy = new URLSearchParams(params);
      copy.set("offset", String(next));
      go(routeWith("audit", copy));
    };
    return card(
      t("audit"),
      form,
      table(
        [t("at"), t("actor"), t("subject"), t("action"), t("resource"), t("purpose"), "IP"],
        list.data.map((e) => [fmtTime(e.at), e.actor, e.subject_code || "—", e.action, e.resource, e.purpose, e.ip || "—"]),
      ),
      pager(list.count, offset, page),
    );
  },

  async org() {
    purpose = t("purpose_org");
    const units = await api("/api/v1/org-units");
    const byId = new Map(units.data.map((u) => [u.id, u]));
    return card(
      t("org_units"),
      table(
        [t("code"), t("name"), t("kind"), t("parent")],
        units.data.map((u) => [u.code, u.name_zh, t(`kind_${u.kind}`), u.parent_id && byId.has(u.parent_id) ? byId.get(u.parent_id).code : "—"]),
      ),
    );
  },
};

async function sessionReport(id) {
  purpose = t("purpose_session");
  const s = await api(`/api/v1/sessions/${encodeURIComponent(id)}`);
  const startMs = Date.parse(s.started_at);
  // Phases are columns and metrics rows: a protocol has a few phases and dozens of metrics.
  const phases = s.phases || [];
  const metricKeys = [...new Set(phases.flatMap((p) => Object.keys(p.metrics || {})))];
  const qualityKeys = [...new Set(phases.flatMap((p) => Object.keys(p.quality || {})))].filter((k) =>
    phases.some((p) => typeof (p.quality || {})[k] === "number"),
  );
  const labelled = (k) => (unitOf(k) ? `${k} (${unitOf(k)})` : k);
  const phaseTable = table(
    [t("phase"), ...phases.map((p) => p.name)],
    [
      [t("kind"), ...phases.map((p) => p.kind)],
      [`${t("planned")} (${t("unit_s")})`, ...phases.map((p) => num(fmtNumber(p.planned_duration_s)))],
      [`${t("pacer")} (${t("unit_bpm")})`, ...phases.map((p) => num(fmtNumber(p.pacer_bpm)))],
      [t("started_at"), ...phases.map((p) => fmtTime(p.started_at))],
      ...qualityKeys.map((k) => [`${t("quality")}: ${labelled(k)}`, ...phases.map((p) => num(fmtNumber((p.quality || {})[k])))]),
      ...metricKeys.map((k) => [labelled(k), ...phases.map((p) => num(fmtNumber(p.metrics ? p.metrics[k] : null)))]),
    ],
  );
  const deltaLabels = Object.keys(s.deltas || {}).filter((k) => s.deltas[k] && typeof s.deltas[k] === "object");
  const deltaKeys = [...new Set(deltaLabels.flatMap((k) => Object.keys(s.deltas[k])))];
  const deltaTable = table(
    [t("cell"), ...deltaLabels],
    deltaKeys.map((k) => [labelled(k), ...deltaLabels.map((label) => num(fmtNumber(s.deltas[label][k], 3)))]),
  );
  const chartsBox = h(
    "div",
    { class: "charts" },
    sessionChart(s, startMs, t("chart_hr"), "mean_hr_bpm", t("unit_bpm"), ["hr_bpm"]),
    sessionChart(s, startMs, t("chart_rmssd"), "rmssd_ms", t("unit_ms"), ["rmssd_ms"]),
    sessionChart(s, startMs, t("chart_coherence"), "coherence_ratio", t("unit_ratio"), ["coherence_ratio", "coherence"]),
    sessionChart(s, startMs, t("chart_eda"), "scl_mean_us", t("unit_us"), ["scl_us"]),
  );
  const keyValues = (obj) =>
    table(
      [t("cell"), t("value")],
      Object.entries(obj || {}).map(([k, v]) => [k, v !== null && typeof v === "object" ? h("pre", {}, JSON.stringify(v, null, 1)) : fmtValue(k, v)]),
    );
  return [
    card(
      `${t("session_report")} ${s.id}`,
      h(
        "p",
        { class: "meta" },
        `${t("subject")}: `,
        can("trend:read") ? h("a", { href: `#/subjects/${encodeURIComponent(s.subject_code)}/trends` }, s.subject_code) : s.subject_code,
        ` · ${t("station")}: ${s.station_id} · ${t("protocol")}: ${s.protocol_id} v${s.protocol_version ?? "?"} · ${t("status")}: ${s.status} · ${fmtTime(s.started_at)} – ${fmtTime(s.ended_at)}`,
      ),
      h("button", { type: "button", class: "no-print", onclick: () => window.print() }, t("print")),
    ),
    card(t("phases"), phaseTable),
    card(t("metrics"), chartsBox),
    card(t("quality_flags"), keyValues(s.session_quality)),
    card(t("deltas"), deltaTable),
    card(
      t("ratings"),
      table([t("when"), t("scale"), t("value")], (s.ratings || []).map((r) => [r.when, r.scale, num(fmtNumber(r.value))])),
    ),
    card(t("events"), table([`t`, t("kind"), ""], (s.events || []).map((e) => [typeof e.t === "number" ? `${fmtNumber(e.t, 1)} ${t("unit_s")}` : fmtTime(e.t), e.kind, h("pre", {}, JSON.stringify(e.payload ?? {}))]))),
    card(t("algorithm_versions"), keyValues(s.algorithm_versions)),
  ];
}

async function subjectTrends(code) {
  purpose = t("purpose_trends");
  const trends = await api(`/api/v1/subjects/${encodeURIComponent(code)}/trends`);
  const points = trends.points || [];
  const labels = points.map((p) => fmtTime(p.started_at));
  const indexOf = new Map(points.map((p, i) => [p.session_id, i]));
  const trendChart = (key, field, title, unit, digits) => {
    const band = trends.baseline ? trends.baseline[key] : null;
    const rolling = (trends.rolling && trends.rolling[key]) || [];
    const rollingData = points.map(() => null);
    for (const r of rolling) if (indexOf.has(r.session_id)) rollingData[indexOf.get(r.session_id)] = r.mean7;
    const series = [
      {
        name: title,
        type: "line",
        data: points.map((p) => p[field]),
        markArea: band ? { silent: true, itemStyle: { color: "#7fb3d533" }, data: [[{ name: t("baseline_band"), yAxis: band.low }, { yAxis: band.high }]] } : undefined,
      },
      { name: t("rolling_mean"), type: "line", showSymbol: false, lineStyle: { type: "dashed" }, data: rollingData },
    ];
    const box = chartBox(key);
    drawLater(box, {
      animation: false,
      title: { text: `${title} (${unit})`, left: 0, textStyle: { fontSize: 13 } },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "—" : `${Number(v).toFixed(digits)} ${unit}`) },
      legend: { top: 0, right: 0 },
      grid: { left: 50, right: 20, top: 60, bottom: 40 },
      xAxis: { type: "category", data: labels },
      yAxis: { type: "value", name: unit, scale: true },
      series,
    });
    const caption = band ? `${t("baseline_band")}: ${fmtNumber(band.low, digits)} – ${fmtNumber(band.high, digits)} ${unit} (n = ${band.n})` : t("no_baseline");
    return h("figure", {}, box, h("figcaption", { class: "meta" }, caption));
  };
  return card(
    `${t("trends_of")} ${trends.subject_code}`,
    h(
      "div",
      { class: "charts" },
      trendChart("lnrmssd", "resting_lnrmssd", t("resting_lnrmssd"), "ln ms", 3),
      trendChart("hr_bpm", "resting_hr_bpm", t("resting_hr"), t("unit_bpm"), 1),
    ),
    table(
      [t("started_at"), `${t("resting_lnrmssd")} (ln ms)`, `${t("resting_hr")} (${t("unit_bpm")})`, `SCL (${t("unit_us")})`, `${t("chart_coherence")} (${t("unit_ratio")})`],
      points.map((p) => [h("a", { href: `#/sessions/${encodeURIComponent(p.session_id)}` }, fmtTime(p.started_at)), num(fmtNumber(p.resting_lnrmssd, 3)), num(fmtNumber(p.resting_hr_bpm, 1)), num(fmtNumber(p.scl_us, 2)), num(fmtNumber(p.coherence, 2))]),
    ),
  );
}

// ---------------------------------------------------------------- start

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang() === "zh-CN" ? "en" : "zh-CN");
  route();
});
document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  go("#/login");
});
window.addEventListener("hashchange", route);
setLang(lang());
route();
