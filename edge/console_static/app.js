// Station console page: plain JavaScript, no libraries, no CDN (works with no central site).
// Talks to the agent's own API (/api/...) and follows /ws/live (about 4 Hz).
"use strict";

const SUBJECT_RE = /^S-[0-9A-HJKMNP-TV-Z]{5,12}$/;
const EN = {
  title: "Shuxin station console", offline: "offline", online: "live",
  new_session: "New session", subject: "Subject code",
  subject_hint: "Pseudonymous code only (S-XXXXX): never a name or an employee number",
  protocol: "Protocol", devices: "Devices", rating_before: "Tension before (0–10)",
  start: "Start", session: "Session", phase: "Phase", remaining: "Remaining",
  hr: "Heart rate", scl: "Skin conductance", coherence: "Coherence",
  hr_trace: "Heart rate", eda_trace: "EDA", pacer: "Breathing pacer",
  markers: "Markers", m_movement: "Movement", m_talking: "Talking",
  m_distress: "Distress", m_sensor: "Sensor adjusted",
  rating_after: "Tension after (0–10)", save: "Save", note: "Note (no names)",
  stop: "Stop session", device_status: "Devices and signal quality", device: "Device",
  link: "Link", battery: "Battery (%)", contact: "Contact", in_session: "Session",
  inhale: "Breathe in", exhale: "Breathe out", low: "low", medium: "medium", high: "high",
  connected: "connected", disconnected: "disconnected", detected: "good",
  not_detected: "no contact", unsupported: "n/a", bad_subject:
    "Subject must be a pseudonymous code like S-7F3K2 (never a name).",
  saved: "Saved", stopped: "Session stopped",
};
const ZH = {
  inhale: "吸气", exhale: "呼气", low: "低", medium: "中", high: "高",
  connected: "已连接", disconnected: "未连接", detected: "良好", not_detected: "未接触",
  unsupported: "不适用", online: "实时", offline: "未连接",
  bad_subject: "受试者代码必须是化名代码，例如 S-7F3K2（不得填写姓名）。",
  saved: "已保存", stopped: "会话已结束",
};
const zhStatic = {};
let lang = localStorage.getItem("shuxin.lang") || "zh";
let current = null;          // running session id shown on the page
const hrTrace = [];
const edaTrace = [];
const TRACE_POINTS = 600;    // 150 s at 4 Hz

function t(key) {
  if (lang === "en") return EN[key] || zhStatic[key] || key;
  return zhStatic[key] || ZH[key] || key;
}
function applyLang() {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    const key = el.dataset.i18n;
    if (!(key in zhStatic)) zhStatic[key] = el.textContent;
    el.textContent = t(key);
  });
  document.getElementById("lang").textContent = lang === "en" ? "中文" : "English";
  loadProtocols();
}
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en";
  localStorage.setItem("shuxin.lang", lang);
  applyLang();
});

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || response.statusText);
  return data;
}

async function loadProtocols() {
  const select = document.getElementById("protocol");
  const chosen = select.value;
  const protocols = await api("/api/protocols");
  select.replaceChildren(...protocols.map((p) => {
    const option = document.createElement("option");
    option.value = p.id;
    option.textContent = `${lang === "en" ? p.name_en : p.name_zh} (${Math.round(p.total_s / 60)} min)`;
    return option;
  }));
  if (chosen) select.value = chosen;
}

function renderDevices(devices) {
  const pick = document.getElementById("device-pick");
  const known = new Set([...pick.querySelectorAll("input")].map((i) => i.value));
  for (const d of devices) {
    if (known.has(d.id)) continue;
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: d.id, checked: true });
    label.append(box, ` ${d.id} (${d.profile})`);
    pick.append(label);
  }
  const body = document.querySelector("#devices tbody");
  body.replaceChildren(...devices.map((d) => {
    const row = document.createElement("tr");
    const cells = [
      d.id,
      t(d.connected ? "connected" : "disconnected"),
      d.battery_pct === null ? "–" : `${d.battery_pct} %`,
      d.contact === null ? "–" : t(d.contact),
      d.rssi_dbm === null ? "–" : `${d.rssi_dbm} dBm`,
      d.session_id || "–",
    ];
    for (const [i, text] of cells.entries()) {
      const cell = document.createElement("td");
      cell.textContent = text;
      const bad = (i === 1 && !d.connected) || (i === 2 && d.battery_pct !== null && d.battery_pct < 20)
        || (i === 3 && d.contact === "not_detected");
      if (bad) cell.className = "bad";
      row.append(cell);
    }
    return row;
  }));
}

function drawTrace(canvas, points, unit) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const values = points.filter((v) => v !== null);
  if (values.length < 2) return;
  let lo = Math.min(...values); let hi = Math.max(...values);
  if (hi - lo < 1e-6) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
  ctx.fillStyle = "#5a6b7b"; ctx.font = "11px sans-serif";
  ctx.fillText(`${hi.toFixed(1)} ${unit}`, 4, 12);
  ctx.fillText(`${lo.toFixed(1)} ${unit}`, 4, height - 4);
  ctx.strokeStyle = "#23415c"; ctx.lineWidth = 1.5; ctx.beginPath();
  let moved = false;
  points.forEach((v, i) => {
    if (v === null) { moved = false; return; }
    const x = (i / (TRACE_POINTS - 1)) * width;
    const y = height - ((v - lo) / (hi - lo)) * height;
    if (moved) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    moved = true;
  });
  ctx.stroke();
}

function push(trace, value) {
  trace.push(value === undefined ? null : value);
  if (trace.length > TRACE_POINTS) trace.shift();
}

function fmt(value, digits) { return value === null || value === undefined ? "–" : value.toFixed(digits); }

function renderSession(s) {
  document.getElementById("session-panel").hidden = !s;
  document.getElementById("start-panel").hidden = Boolean(s);
  if (!s) { current = null; return; }
  if (current !== s.session_id) { hrTrace.length = 0; edaTrace.length = 0; }
  current = s.session_id;
  document.getElementById("session-id").textContent = s.session_id;
  document.getElementById("s-subject").textContent = s.subject;
  document.getElementById("s-phase").textContent = s.phase
    ? (lang === "en" ? s.phase.name_en : s.phase.name_zh) : "–";
  document.getElementById("s-remaining").textContent = s.phase
    ? `${Math.floor(s.phase.remaining_s / 60)} min ${Math.round(s.phase.remaining_s % 60)} s` : "–";
  document.getElementById("m-hr").textContent = fmt(s.live.hr_bpm, 0);
  document.getElementById("m-rmssd").textContent = fmt(s.live.rmssd_ms, 0);
  document.getElementById("m-scl").textContent = fmt(s.live.eda_scl_us, 2);
  const level = s.live.coherence;
  document.getElementById("coherence").className = `meter ${level || ""}`;
  document.getElementById("m-coh").textContent = level ? t(level) : "–";
  push(hrTrace, s.live.hr_bpm); push(edaTrace, s.live.eda_scl_us);
  drawTrace(document.getElementById("hr-chart"), hrTrace, "bpm");
  drawTrace(document.getElementById("eda-chart"), edaTrace, "µS");
  const ball = document.getElementById("pacer-ball");
  const text = document.getElementById("pacer-text");
  if (s.pacer) {
    const p = s.pacer.progress;
    const size = s.pacer.breath === "inhale" ? 0.4 + 0.6 * p : 1.0 - 0.6 * p;
    ball.style.transform = `scale(${size.toFixed(3)})`;
    ball.style.transition = "transform 0.25s linear";
    text.textContent = `${t(s.pacer.breath)} · ${s.pacer.bpm} /min`;
  } else {
    ball.style.transform = "scale(0.4)";
    text.textContent = "–";
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/live`);
  const badge = document.getElementById("conn");
  ws.onopen = () => { badge.className = "badge"; badge.textContent = t("online"); };
  ws.onmessage = (message) => {
    const status = JSON.parse(message.data);
    document.getElementById("station").textContent = status.station;
    renderDevices(status.devices);
    const mine = status.sessions.find((s) => s.session_id === current) || status.sessions[0] || null;
    renderSession(mine);
  };
  ws.onclose = () => {
    badge.className = "badge off"; badge.textContent = t("offline");
    setTimeout(connect, 2000);
  };
}

document.getElementById("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("start-error");
  error.textContent = "";
  const subject = document.getElementById("subject").value.trim().toUpperCase();
  if (!SUBJECT_RE.test(subject)) { error.textContent = t("bad_subject"); return; }
  const devices = [...document.querySelectorAll("#device-pick input:checked")].map((i) => i.value);
  const before = document.getElementById("rating-before").value;
  try {
    const s = await api("/api/sessions", {
      subject, protocol: document.getElementById("protocol").value, devices,
      rating_before: before === "" ? null : Number(before),
    });
    current = s.session_id;
    document.getElementById("subject").value = "";
  } catch (e) { error.textContent = e.message; }
});

async function act(path, body) {
  const msg = document.getElementById("session-msg");
  try { await api(`/api/sessions/${current}/${path}`, body); msg.textContent = t("saved"); }
  catch (e) { msg.textContent = e.message; }
}
document.querySelectorAll("button.marker").forEach((b) =>
  b.addEventListener("click", () => act("marker", { label: b.dataset.label })));
document.getElementById("rate-after").addEventListener("click", () => {
  const value = document.getElementById("rating-after").value;
  if (value !== "") act("rating", { when: "after", value: Number(value) });
});
document.getElementById("save-note").addEventListener("click", () => {
  const note = document.getElementById("note");
  if (note.value.trim()) act("note", { text: note.value.trim() }).then(() => { note.value = ""; });
});
document.getElementById("stop").addEventListener("click", async () => {
  if (!current) return;
  await act("stop", {});
  document.getElementById("session-msg").textContent = t("stopped");
});

applyLang();
connect();
