// ChargeLedger console: a single page over the HTTP API (/api/v1), with the user's session
// cookie. No library, no build step: this file is served as it is. Every figure comes from the
// API as text or integers (Wh, W); nothing is computed in floating point but chart geometry.
"use strict";

(() => {
  const state = { me: null, timers: [], authOff: false, early: new Map() };
  const REFRESH_MS = 3000;
  const STATUSES = ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE",
    "Finishing", "Reserved", "Occupied", "Unavailable", "Faulted"];

  class Stop extends Error {}

  // ---- DOM ----------------------------------------------------------------------------------
  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach((c) => add(node, c)); return; }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    add(node, children);
    return node;
  }

  const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const s = (tag, attrs, ...children) =>
    build(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, children);

  const link = (href, text) => h("a", { href }, text);
  // OCPP 1.6 has connectors only; 2.x numbers them within an EVSE.
  const connectorName = (c) => (c.evse_id === null || c.evse_id === undefined ? `${c.connector_id}` : `${c.evse_id}/${c.connector_id}`);
  const LONG_ROWS = 100;
  function table(caption, head, rows, opts = {}) {
    const long = opts.long || rows.length > LONG_ROWS;
    const wrap = h("div", { class: long ? "table-wrap long" : "table-wrap" },
      h("table", { id: opts.id },
        caption ? h("caption", {}, caption) : null,
        h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col", class: numeric(c) ? "num" : null }, label(c))))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: head.length, class: "muted" }, opts.empty || "Nothing here.")))));
    if (!long) return wrap;
    wrap.style.setProperty("--cols", head.length);
    return withRoles(wrap);
  }
  // A long table's CSS lays its rows out as grids, so that rows out of sight cost nothing: its
  // elements say what they are, since a table laid out otherwise is no table to assistive tech.
  function withRoles(wrap) {
    const roles = [["table", "table"], ["thead, tbody", "rowgroup"], ["tr", "row"], ["th", "columnheader"], ["td", "cell"]];
    for (const [selector, role] of roles) {
      for (const node of wrap.querySelectorAll(selector)) node.setAttribute("role", role);
    }
    return wrap;
  }
  const numeric = (c) => typeof c === "object" && c !== null && c.num;
  const label = (c) => (typeof c === "object" && c !== null ? c.text : c);
  const row = (cells) => h("tr", {}, cells.map((c) =>
    (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))));
  const num = (value) => h("td", { class: "num" }, value);

  function toast(message) {
    const box = document.getElementById("toast");
    const line = h("p", {}, message);
    box.append(line);
    setTimeout(() => line.remove(), 6000);
  }

  // ---- Formatting ---------------------------------------------------------------------------
  const time = (iso) => (iso ? `${iso.replace("T", " ").slice(0, 19)} UTC` : "–");
  function kwh(wh) {
    if (wh === null || wh === undefined) return "–";
    const digits = String(Math.abs(wh)).padStart(4, "0");
    return `${wh < 0 ? "-" : ""}${digits.slice(0, -3)}.${digits.slice(-3)} kWh`;
  }
  const today = () => new Date().toISOString().slice(0, 10);
  function daysBefore(day, n) {
    const d = new Date(`${day}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() - n);
    return d.toISOString().slice(0, 10);
  }

  const STATUS_TONE = { Available: "ok", Charging: "ok", Preparing: "idle", Finishing: "idle",
    SuspendedEV: "idle", SuspendedEVSE: "warn", Reserved: "idle", Occupied: "idle",
    Unavailable: "warn", Faulted: "bad" };
  const STATUS_MARK = { ok: "●", idle: "◐", warn: "▲", bad: "✖" };
  function statusBadge(status, fault) {
    const tone = fault ? "bad" : STATUS_TONE[status] || "idle";
    return h("span", { class: `badge ${tone}` }, h("span", { "aria-hidden": "true" }, STATUS_MARK[tone]), status);
  }
  const onlineBadge = (online) => h("span", { class: `badge ${online ? "ok" : "bad"}` },
    h("span", { "aria-hidden": "true" }, online ? "●" : "○"), online ? "Online" : "Offline");
  const yesNo = (flag, yes, no) => h("span", { class: `badge ${flag ? "warn" : "ok"}` }, flag ? yes : no);
  function signatureBadge(status) {
    const tone = { verified: "ok", unverified: "warn", invalid: "bad", none: "idle" }[status] || "idle";
    return h("span", { class: `badge ${tone}` }, `signature: ${status}`);
  }

  // ---- API ----------------------------------------------------------------------------------
  function detail(data, status) {
    const found = data && typeof data === "object" ? data.detail : data;
    if (Array.isArray(found)) return found.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
    return found ? String(found) : `HTTP ${status}`;
  }

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.me && state.me.csrf_token) headers["X-CSRF-Token"] = state.me.csrf_token;
    let res;
    try {
      res = await fetch(path, { method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
    } catch (exc) {
      throw new Error(`cannot reach the ChargeLedger server (${exc.message}); is it running?`);
    }
    const text = await res.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch (exc) { /* not JSON: kept as text */ }
    if (res.status === 401 && !path.startsWith("/api/v1/session")) {
      showLogin("Your session has ended: log in again.");
      throw new Stop();
    }
    return { ok: res.ok, status: res.status, data, headers: res.headers };
  }

  async function get(path) {
    const res = await api(path);
    if (!res.ok) throw new Error(`${path}: ${detail(res.data, res.status)}`);
    return res.data;
  }

  const qs = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    const text = q.toString();
    return text ? `?${text}` : "";
  };
  const can = (right) => state.authOff || (state.me && state.me.rights.includes(right));

  // ---- Login and frame ----------------------------------------------------------------------
  function showLogin(message) {
    state.me = null;
    stopTimers();
    document.getElementById("top").hidden = true;
    const error = h("p", { role: "alert", id: "login-error" }, message || "");
    const name = h("input", { id: "login-name", name: "username", autocomplete: "username", required: true });
    const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
    const form = h("form", { "aria-labelledby": "login-title", onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      const res = await api("/api/v1/session", { method: "POST", body: { name: name.value, password: password.value } });
      if (!res.ok) { error.textContent = detail(res.data, res.status); password.value = ""; password.focus(); return; }
      // The session cookie is Secure: over plain HTTP, except on localhost, the browser drops it.
      const kept = await api("/api/v1/session");
      if (!kept.ok) {
        error.textContent = "Logged in, but this browser did not keep the session cookie, which is sent only over HTTPS"
          + " (or to localhost). Open the console through HTTPS (a TLS proxy in front of ChargeLedger), or, on a"
          + " trusted network only, start it with CHARGELEDGER_SESSION_COOKIE_SECURE=off.";
        return;
      }
      state.me = kept.data;
      start();
    } },
    h("label", { for: "login-name" }, "User name", name),
    h("label", { for: "login-password" }, "Password", password),
    h("button", { type: "submit" }, "Log in"), error);
    const main = document.getElementById("main");
    main.replaceChildren(h("div", { class: "card login" }, h("h1", { id: "login-title" }, "Log in to ChargeLedger"), form));
    document.title = "Log in · ChargeLedger";
    document.body.dataset.page = "login";
    name.focus();
  }

  const NAV = [
    ["#/", "Fleet", "read"], ["#/sessions", "Sessions", "read"], ["#/invoices", "Invoices", "read"],
    ["#/review", "Review", "read"], ["#/tariffs", "Tariffs", "read"], ["#/energy", "Energy", "read"],
    ["#/users", "Users", "admin"],
  ];

  function frame() {
    document.getElementById("top").hidden = false;
    const who = state.authOff ? "access checking off" : `${state.me.name} (${state.me.role})`;
    document.getElementById("who").textContent = who;
    document.getElementById("logout").hidden = state.authOff;
    document.getElementById("nav").replaceChildren(...NAV.filter(([, , right]) => can(right))
      .map(([href, text]) => h("li", {}, h("a", { href }, text))));
  }

  async function start() {
    frame();
    await render();
  }

  // ---- Router -------------------------------------------------------------------------------
  const ROUTES = [
    [/^\/$/, "fleet", fleetPage], [/^\/stations\/([^/]+)$/, "station", stationPage],
    [/^\/sessions$/, "sessions", sessionsPage], [/^\/sessions\/([^/]+)$/, "session", sessionPage],
    [/^\/invoices$/, "invoices", invoicesPage], [/^\/invoices\/([^/]+)$/, "invoice", invoicePage],
    [/^\/invoices\/([^/]+)\/evidence$/, "evidence", evidencePage],
    [/^\/invoices\/([^/]+)\/cdr$/, "cdr", cdrPage],
    [/^\/review$/, "review", reviewPage], [/^\/tariffs$/, "tariffs", tariffsPage],
    [/^\/tariffs\/([^/]+)$/, "tariff", tariffPage], [/^\/energy$/, "energy", energyPage],
    [/^\/users$/, "users", usersPage],
  ];

  function stopTimers() { state.timers.forEach(clearInterval); state.timers = []; }

  function where() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query] = hash.split("?");
    return { path, query: new URLSearchParams(query || "") };
  }

  async function render() {
    if (!state.me && !state.authOff) return;
    stopTimers();
    const { path, query } = where();
    const main = document.getElementById("main");
    delete document.body.dataset.ready;
    for (const a of document.querySelectorAll("#nav a")) {
      const target = a.getAttribute("href").slice(1);
      const current = target === "/" ? path === "/" || path.startsWith("/stations") : path.startsWith(target);
      if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const route = ROUTES.find(([pattern]) => pattern.test(path));
    if (!route) {
      main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No such page. ", link("#/", "Go to the fleet.")));
      document.body.dataset.ready = "notfound";
      return;
    }
    const [pattern, name, page] = route;
    const args = path.match(pattern).slice(1).map(decodeURIComponent);
    document.body.dataset.page = name;
    try {
      const content = await page(query, ...args);
      if (where().path !== path) return; // the user went elsewhere meanwhile
      main.replaceChildren(content);
      document.body.dataset.route = location.hash || "#/";
      document.body.dataset.ready = name;
    } catch (exc) {
      if (exc instanceof Stop) return;
      main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { role: "alert" }, exc.message));
      document.body.dataset.ready = "error";
    }
  }

  function title(text) { document.title = `${text} · ChargeLedger`; return h("h1", {}, text); }

  // A form whose fields are kept in the page's address (so a filtered page can be linked).
  function filterForm(fields, query, basePath) {
    const form = h("form", { class: "filters", role: "search", onsubmit: (event) => {
      event.preventDefault();
      const params = {};
      for (const [name] of fields) params[name] = form.elements[name].value;
      location.hash = `#${basePath}${qs(params)}`;
    } });
    for (const [name, text, kind, options] of fields) {
      const id = `f-${name}`;
      let input;
      if (kind === "select") {
        input = h("select", { id, name }, options.map(([value, shown]) => h("option", { value }, shown)));
      } else {
        input = h("input", { id, name, type: kind || "text" });
      }
      input.value = query.get(name) || "";
      form.append(h("label", { for: id }, text, input));
    }
    form.append(h("button", { type: "submit" }, "Show"));
    return form;
  }

  // ---- Charts (SVG, each with its figures in a table beside it) -----------------------------
  function bars(items, { caption, unit, top }) {
    const width = 720, height = 220, left = 48, bottom = 28;
    const max = top || Math.max(1, ...items.map((i) => i.value));
    const step = (width - left) / Math.max(1, items.length);
    const chart = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": caption },
      s("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
      s("text", { x: 0, y: 12 }, `${max}${unit}`), s("text", { x: 0, y: height - bottom }, `0${unit}`),
      items.map((item, n) => {
        const barHeight = ((height - bottom - 16) * item.value) / max;
        const x = left + n * step + step * 0.15;
        return s("g", {},
          s("rect", { class: "bar", x, y: height - bottom - barHeight, width: step * 0.7, height: barHeight },
            s("title", {}, `${item.label}: ${item.text}`)),
          items.length <= 31 || n % Math.ceil(items.length / 15) === 0
            ? s("text", { x, y: height - 8 }, item.label.slice(-5)) : null);
      }));
    return chart;
  }

  function curveChart(curve) {
    const points = curve.points.filter((p) => p.power_w !== null || p.energy_wh !== null);
    const periods = curve.charging_periods;
    const times = [...points.map((p) => Date.parse(p.at)), ...periods.flatMap((p) => [Date.parse(p.start), Date.parse(p.end)])];
    if (!times.length) return h("p", { class: "muted" }, "No meter readings with power or energy in this session.");
    const width = 800, height = 300, left = 64, right = 72, top = 16, bottom = 32;
    const t0 = Math.min(...times), t1 = Math.max(t0 + 1, ...times);
    const maxPower = Math.max(1, ...points.map((p) => p.power_w || 0));
    const maxEnergy = Math.max(1, ...points.map((p) => p.energy_wh || 0));
    const x = (t) => left + ((width - left - right) * (t - t0)) / (t1 - t0);
    const yPower = (w) => height - bottom - ((height - bottom - top) * w) / maxPower;
    const yEnergy = (wh) => height - bottom - ((height - bottom - top) * wh) / maxEnergy;
    const line = (cls, pick, scale) => {
      const drawn = points.filter((p) => pick(p) !== null);
      return drawn.length ? s("polyline", { class: cls, points: drawn.map((p) => `${x(Date.parse(p.at)).toFixed(1)},${scale(pick(p)).toFixed(1)}`).join(" ") }) : null;
    };
    return h("figure", {},
      s("svg", { class: "chart", id: "curve", viewBox: `0 0 ${width} ${height}`, role: "img",
        "aria-label": `Charging curve: power up to ${maxPower} W, ${kwh(maxEnergy)} charged` },
      periods.map((p) => s("rect", { class: p.state, x: x(Date.parse(p.start)), y: top,
        width: Math.max(1, x(Date.parse(p.end)) - x(Date.parse(p.start))), height: height - top - bottom },
      s("title", {}, `${p.state} ${time(p.start)} – ${time(p.end)}: ${kwh(p.energy_wh)}`))),
      s("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
      s("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
      s("line", { class: "axis", x1: width - right, y1: top, x2: width - right, y2: height - bottom }),
      s("text", { x: 2, y: top + 8 }, `${maxPower} W`), s("text", { x: 2, y: height - bottom }, "0 W"),
      s("text", { x: width - right + 4, y: top + 8 }, kwh(maxEnergy)),
      s("text", { x: left, y: height - 10 }, time(new Date(t0).toISOString())),
      s("text", { x: width - right - 150, y: height - 10 }, time(new Date(t1).toISOString())),
      line("power", (p) => p.power_w, yPower), line("energy", (p) => p.energy_wh, yEnergy)),
      h("figcaption", { class: "legend" }, h("span", { class: "l-power" }, "Power (W, left)"),
        h("span", { class: "l-energy" }, "Energy since start (right)"),
        h("span", { class: "l-charging" }, "Charging"), h("span", { class: "l-parking" }, "Parking")));
  }

  const TONE_CLASS = { ok: "st-ok", idle: "st-idle", warn: "st-warn", bad: "st-bad" };
  function timeline(day, changes, connectors) {
    const start = Date.parse(`${day}T00:00:00Z`), end = start + 86400000;
    const keys = connectors.map(connectorName);
    const width = 800, rowHeight = 26, left = 70, height = keys.length * rowHeight + 24;
    const x = (t) => left + ((width - left) * (Math.min(end, Math.max(start, t)) - start)) / 86400000;
    const rows = keys.map((key, n) => {
      const mine = changes.filter((c) => connectorName(c) === key);
      const spans = mine.map((c, i) => [Date.parse(c.occurred_at), i + 1 < mine.length ? Date.parse(mine[i + 1].occurred_at) : Math.min(end, Date.now()), c.status]);
      return s("g", {}, s("text", { x: 0, y: n * rowHeight + 17 }, `connector ${key}`),
        spans.map(([from, to, status]) => s("rect", { class: TONE_CLASS[STATUS_TONE[status] || "idle"],
          x: x(from), y: n * rowHeight + 4, width: Math.max(1, x(to) - x(from)), height: rowHeight - 8 },
        s("title", {}, `${key} ${status} from ${time(new Date(from).toISOString())}`))));
    });
    return s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Status timeline of ${day}` },
      rows, [0, 6, 12, 18, 24].map((hour) => s("text", { x: x(start + hour * 3600000) - (hour === 24 ? 30 : 0), y: height - 4 }, `${String(hour).padStart(2, "0")}:00`)));
  }

  // ---- Fleet --------------------------------------------------------------------------------
  const FLEET_HEAD = ["Station", "Online", "Connectors", "Faults", "Last seen", "Firmware",
    { text: "Avail. today", num: true }, { text: "Avail. 7 days", num: true },
    { text: "Sessions today", num: true }, { text: "Energy today", num: true }];

  // The fleet's rows are written as markup, a thousand at a time, which is several times
  // faster than building their elements one by one; every value goes through esc().
  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" };
  const esc = (value) => String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  const badgeMarkup = (tone, text) => `<span class="badge ${tone}"><span aria-hidden="true">${STATUS_MARK[tone]}</span>${esc(text)}</span>`;

  function fleetRowsMarkup(stations) {
    if (!stations.length) return `<tr role="row"><td role="cell" colspan="${FLEET_HEAD.length}" class="muted">No station matches.</td></tr>`;
    // Each cell names its column (data-label): on a phone the rows are cards, headed by it.
    const labels = FLEET_HEAD.map((c) => esc(label(c)));
    return stations.map((st) => {
      const connectors = st.connectors.length
        ? st.connectors.map((c) => `<span>${esc(c.connector_id)}: ${badgeMarkup(c.fault ? "bad" : STATUS_TONE[c.status] || "idle", c.status)}</span>`).join("")
        : '<span class="muted">no status yet</span>';
      const cells = [
        `<a href="#/stations/${esc(encodeURIComponent(st.station_id))}">${esc(st.station_id)}</a>`,
        st.online ? '<span class="badge ok"><span aria-hidden="true">●</span>Online</span>' : '<span class="badge bad"><span aria-hidden="true">○</span>Offline</span>',
        `<div class="chips">${connectors}</div>`,
        st.faults ? `<span class="badge bad">✖ ${esc(st.faults)} fault${st.faults > 1 ? "s" : ""}</span>` : '<span class="muted">none</span>',
        esc(time(st.last_seen_at)), esc(st.firmware_version || "–"),
        esc(`${st.availability_today_percent} %`), esc(`${st.availability_7d_percent} %`),
        esc(st.sessions_today), esc(kwh(st.energy_today_wh)),
      ];
      return `<tr role="row">${cells.map((c, n) => `<td role="cell" data-label="${labels[n]}"${n >= 6 ? ' class="num"' : ""}>${c}</td>`).join("")}</tr>`;
    }).join("");
  }

  function fleetSummary(stations) {
    const online = stations.filter((st) => st.online).length;
    const faulted = stations.filter((st) => st.faults).length;
    return h("div", { class: "summary", id: "fleet-summary" },
      h("div", {}, h("span", { class: "muted" }, "Stations"), h("strong", {}, stations.length)),
      h("div", {}, h("span", { class: "muted" }, "Online"), h("strong", {}, online)),
      h("div", {}, h("span", { class: "muted" }, "Offline"), h("strong", {}, stations.length - online)),
      h("div", {}, h("span", { class: "muted" }, "With faults"), h("strong", {}, faulted)));
  }

  async function fleetPage(query) {
    const filters = { q: query.get("q"), status: query.get("status"), fault: query.get("fault"), online: query.get("online") };
    const path = `/api/v1/fleet${qs({ ...filters, limit: 10000 })}`;
    const early = state.early.get(path);
    state.early.clear();
    const stations = (early && (await early)) || (await get(path));
    const head = FLEET_HEAD;
    const grid = table(null, head, [], { id: "fleet", long: true });
    grid.querySelector("tbody").innerHTML = fleetRowsMarkup(stations);
    const summary = fleetSummary(stations);
    const updated = h("p", { class: "muted", id: "fleet-updated" }, `Updated ${time(new Date().toISOString())}; refreshes every 3 s.`);
    const page = h("div", {}, title("Fleet"),
      filterForm([["q", "Search"], ["status", "Connector status", "select", [["", "Any"], ...STATUSES.map((st) => [st, st])]],
        ["fault", "Faults", "select", [["", "Any"], ["true", "With a fault"], ["false", "Without faults"]]],
        ["online", "Online", "select", [["", "Any"], ["true", "Online"], ["false", "Offline"]]]], query, "/"),
      summary, updated, h("section", { "aria-label": "Stations" }, grid));
    state.timers.push(setInterval(async () => {
      try {
        const fresh = await get(path);
        const body = document.querySelector("#fleet tbody");
        if (!body) return;
        body.innerHTML = fleetRowsMarkup(fresh);
        document.getElementById("fleet-summary").replaceWith(fleetSummary(fresh));
        document.getElementById("fleet-updated").textContent = `Updated ${time(new Date().toISOString())}; refreshes every 3 s.`;
      } catch (exc) {
        if (!(exc instanceof Stop)) document.getElementById("fleet-updated").textContent = `Not updated: ${exc.message}`;
      }
    }, REFRESH_MS));
    return page;
  }

  // ---- Station ------------------------------------------------------------------------------
  async function stationPage(query, id) {
    const base = `/api/v1/stations/${encodeURIComponent(id)}`;
    const day = query.get("day") || today();
    const next = daysBefore(day, -1);
    const [st, history, availability, security, firmware, diagnostics, keys, zones, sessions] = await Promise.all([
      get(base), get(`${base}/status-history${qs({ from: `${day}T00:00:00Z`, to: `${next}T00:00:00Z` })}`),
      get(`${base}/availability${qs({ from: daysBefore(today(), 13), to: today() })}`),
      get(`${base}/security-events`), get(`${base}/firmware-status-history`), get(`${base}/diagnostics-status-history`),
      get(`${base}/meter-keys`), get(`${base}/time-zones`),
      get(`/api/v1/sessions${qs({ station_id: id, from: `${daysBefore(today(), 30)}T00:00:00Z`, limit: 1000 })}`),
    ]);
    // When the day began each connector was in the status its first change of the day left
    // (previous_status), or, without a change that day, in its current status if it had it then.
    const dayStart = `${day}T00:00:00Z`;
    const opening = st.connectors.map((c) => {
      const first = history.find((x) => connectorName(x) === connectorName(c));
      if (first && first.previous_status) return { ...c, status: first.previous_status, occurred_at: dayStart };
      if (!first && Date.parse(c.since) <= Date.parse(dayStart)) return { ...c, occurred_at: dayStart };
      return null;
    }).filter(Boolean);
    const changes = [...opening, ...history];
    const dayForm = h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); location.hash = `#/stations/${encodeURIComponent(id)}?day=${e.target.elements.day.value}`; } },
      h("label", { for: "day" }, "Day (UTC)", h("input", { id: "day", name: "day", type: "date", value: day })), h("button", { type: "submit" }, "Show day"));
    return h("div", {}, title(`Station ${st.station_id}`),
      h("div", { class: "grid" },
        h("section", { "aria-labelledby": "h-about" }, h("h2", { id: "h-about" }, "About"), h("dl", { class: "facts" },
          h("dt", {}, "Connection"), h("dd", {}, onlineBadge(st.online), ` since ${time(st.online_since)}`),
          h("dt", {}, "Last seen"), h("dd", {}, time(st.last_seen_at)),
          h("dt", {}, "Last boot"), h("dd", {}, time(st.last_boot_at)),
          h("dt", {}, "Vendor / model"), h("dd", {}, `${st.vendor || "–"} / ${st.model || "–"}`),
          h("dt", {}, "Serial number"), h("dd", {}, st.serial_number || "–"),
          h("dt", {}, "OCPP"), h("dd", {}, st.ocpp_version || "–"),
          h("dt", {}, "Firmware"), h("dd", {}, st.firmware_version || "–",
            st.firmware_status ? ` (update: ${st.firmware_status.status}, ${time(st.firmware_status.since)})` : ""),
          h("dt", {}, "Diagnostics"), h("dd", {}, st.diagnostics_status ? `${st.diagnostics_status.status}, ${time(st.diagnostics_status.since)}` : "–"),
          h("dt", {}, "Registered"), h("dd", {}, st.registered ? (st.enabled ? "yes, enabled" : "yes, disabled") : "no"),
          h("dt", {}, "Time zone"), h("dd", {}, zones.length ? zones[zones.length - 1].time_zone : "UTC (none set)"))),
        h("section", { "aria-labelledby": "h-conn" }, h("h2", { id: "h-conn" }, "Connectors"),
          table(null, ["Connector", "Status", "Since", "Error"], st.connectors.map((c) => row([
            connectorName(c), statusBadge(c.status, c.fault), time(c.since),
            c.error_code && c.error_code !== "NoError" ? `${c.error_code}${c.info ? ` (${c.info})` : ""}` : "–"])), { id: "connectors" }),
          h("h2", {}, "Current faults"),
          st.current_faults.length ? h("ul", {}, st.current_faults.map((c) => h("li", {}, `Connector ${c.connector_id}: ${c.status}, ${c.error_code || ""} since ${time(c.since)}`)))
            : h("p", {}, "None."))),
      h("section", { "aria-labelledby": "h-timeline" }, h("h2", { id: "h-timeline" }, `Status on ${day}`), dayForm,
        timeline(day, changes, st.connectors),
        h("details", {}, h("summary", {}, "The changes as a table"),
          table(null, ["Time", "Connector", "Status", "Error"], history.map((c) => row([time(c.occurred_at), connectorName(c), c.status, c.error_code || "–"]))))),
      h("section", { "aria-labelledby": "h-avail" }, h("h2", { id: "h-avail" }, "Availability per day (last 14 UTC days)"),
        bars(availability.map((d) => ({ label: d.day, value: Number(d.availability_percent), text: `${d.availability_percent} %` })), { caption: "Availability per day", unit: "%", top: 100 }),
        h("details", {}, h("summary", {}, "As a table"), table(null, ["Day", { text: "Availability", num: true }], availability.map((d) => row([d.day, num(`${d.availability_percent} %`)]))))),
      can("operate") ? commandsSection(st) : null,
      h("div", { class: "grid" },
        h("section", { "aria-labelledby": "h-sec" }, h("h2", { id: "h-sec" }, "Security events"),
          table(null, ["Time", "Type", "Details"], security.slice(-20).reverse().map((e) => row([time(e.timestamp), e.type, e.tech_info || "–"])), { empty: "None reported." })),
        h("section", { "aria-labelledby": "h-fw" }, h("h2", { id: "h-fw" }, "Firmware and diagnostics reports"),
          table(null, ["Time", "Report", "Status"], [...firmware.map((f) => ["firmware", f]), ...diagnostics.map((f) => ["diagnostics", f])]
            .sort((a, b) => b[1].occurred_at.localeCompare(a[1].occurred_at)).slice(0, 20)
            .map(([kind, f]) => row([time(f.occurred_at), kind, f.status])), { empty: "None reported." }))),
      h("section", { "aria-labelledby": "h-keys" }, h("h2", { id: "h-keys" }, "Meter keys"),
        table(null, ["Meter", "Key", "Valid from"], keys.map((k) => row([k.meter_serial || k.meter_id || "–", h("code", { class: "raw" }, (k.public_key || "").slice(0, 40) + "…"), time(k.valid_from || k.registered_at)])), { empty: "No meter key registered." })),
      h("section", { "aria-labelledby": "h-recent" }, h("h2", { id: "h-recent" }, "Recent sessions (30 days)"),
        sessionTable(sessions.slice(-20).reverse())));
  }

  const COMMANDS = {
    "1.6": [["Reset", [["type", "Type", ["Soft", "Hard"]]], (v) => ({ type: v.type })],
      ["UnlockConnector", [["connectorId", "Connector", "number"]], (v) => ({ connectorId: Number(v.connectorId) })],
      ["ChangeAvailability", [["connectorId", "Connector (0: whole station)", "number"], ["type", "Availability", ["Operative", "Inoperative"]]], (v) => ({ connectorId: Number(v.connectorId), type: v.type })],
      ["RemoteStartTransaction", [["idTag", "Id tag"], ["connectorId", "Connector", "number"]], (v) => ({ idTag: v.idTag, connectorId: Number(v.connectorId) })],
      ["RemoteStopTransaction", [["transactionId", "Transaction id", "number"]], (v) => ({ transactionId: Number(v.transactionId) })],
      ["TriggerMessage", [["requestedMessage", "Message", ["StatusNotification", "Heartbeat", "MeterValues", "BootNotification", "FirmwareStatusNotification", "DiagnosticsStatusNotification"]]], (v) => ({ requestedMessage: v.requestedMessage })]],
    "2": [["Reset", [["type", "Type", ["Immediate", "OnIdle"]]], (v) => ({ type: v.type })],
      ["UnlockConnector", [["evseId", "EVSE", "number"], ["connectorId", "Connector", "number"]], (v) => ({ evseId: Number(v.evseId), connectorId: Number(v.connectorId) })],
      ["ChangeAvailability", [["evseId", "EVSE (0: whole station)", "number"], ["operationalStatus", "Availability", ["Operative", "Inoperative"]]], (v) => ({ operationalStatus: v.operationalStatus, ...(Number(v.evseId) ? { evse: { id: Number(v.evseId) } } : {}) })],
      ["RequestStartTransaction", [["idToken", "Id token"], ["evseId", "EVSE", "number"], ["remoteStartId", "Remote start id", "number"]], (v) => ({ idToken: { idToken: v.idToken, type: "ISO14443" }, evseId: Number(v.evseId), remoteStartId: Number(v.remoteStartId) })],
      ["RequestStopTransaction", [["transactionId", "Transaction id"]], (v) => ({ transactionId: v.transactionId })],
      ["TriggerMessage", [["requestedMessage", "Message", ["StatusNotification", "Heartbeat", "MeterValues", "BootNotification", "FirmwareStatusNotification", "LogStatusNotification"]]], (v) => ({ requestedMessage: v.requestedMessage })]],
  };

  function commandsSection(st) {
    const version = (st.ocpp_version || "1.6").includes("1.6") ? "1.6" : "2";
    const answer = h("div", { id: "command-answer", role: "status", "aria-live": "polite" });
    const show = (what, res) => {
      const outcome = res.data && res.data.status ? res.data.status : detail(res.data, res.status);
      answer.replaceChildren(h("p", {}, h("strong", {}, `${what}: `), outcome),
        res.data && res.data.response !== undefined ? h("pre", { class: "json" }, JSON.stringify(res.data.response, null, 2))
          : res.data && typeof res.data === "object" ? h("pre", { class: "json" }, JSON.stringify(res.data, null, 2)) : null);
    };
    const forms = COMMANDS[version].map(([action, fields, payload]) => {
      const form = h("form", { class: "inline", "aria-label": action, onsubmit: async (e) => {
        e.preventDefault();
        const values = {};
        for (const [name] of fields) values[name] = form.elements[name].value;
        answer.replaceChildren(h("p", {}, `${action}: waiting for the station…`));
        const res = await api(`/api/v1/stations/${encodeURIComponent(st.station_id)}/commands`, { method: "POST", body: { action, payload: payload(values), timeout_s: 30 } });
        show(action, res);
      } }, h("strong", {}, action), fields.map(([name, text, kind]) => {
        const id = `c-${action}-${name}`;
        const input = Array.isArray(kind) ? h("select", { id, name }, kind.map((k) => h("option", { value: k }, k)))
          : h("input", { id, name, type: kind || "text", required: true, value: kind === "number" ? "1" : "" });
        return h("label", { for: id }, text, input);
      }), h("button", { type: "submit" }, `Send ${action}`));
      return form;
    });
    const sync = h("form", { class: "inline", "aria-label": "Local list sync", onsubmit: async (e) => {
      e.preventDefault();
      answer.replaceChildren(h("p", {}, "Local list: waiting for the station…"));
      const res = await api(`/api/v1/stations/${encodeURIComponent(st.station_id)}/local-list/sync`, { method: "POST", body: { full: sync.elements.full.checked } });
      show("Local list sync", res);
    } }, h("strong", {}, "Local list"), h("label", { class: "check", for: "c-full" }, h("input", { id: "c-full", name: "full", type: "checkbox" }), "Send the whole list"),
    h("button", { type: "submit" }, "Sync local list"));
    return h("section", { "aria-labelledby": "h-cmd", id: "commands" }, h("h2", { id: "h-cmd" }, `Commands (OCPP ${version === "1.6" ? "1.6" : "2.x"})`), forms, sync, answer);
  }

  // ---- Sessions -----------------------------------------------------------------------------
  function sessionTable(sessions) {
    return table(null, ["Session", "Station", "Id token", "Started", "Stopped", { text: "Energy", num: true }, "Status", "Flags"],
      sessions.map((x) => row([link(`#/sessions/${encodeURIComponent(x.session_id)}`, x.session_id), link(`#/stations/${encodeURIComponent(x.station_id)}`, x.station_id),
        x.id_tag || "–", time(x.started_at), time(x.stopped_at), num(kwh(x.energy_wh)), x.status,
        x.flags.length ? h("div", { class: "chips" }, x.flags.map((f) => h("span", { class: "badge warn" }, `▲ ${f}`))) : "–"])),
      { id: "sessions", empty: "No session matches." });
  }

  async function sessionsPage(query) {
    const params = { station_id: query.get("station_id"), id_tag: query.get("id_tag"), status: query.get("status"),
      flag: query.get("flag"), review_required: query.get("review_required"),
      from: query.get("from") ? `${query.get("from")}T00:00:00Z` : "", to: query.get("to") ? `${daysBefore(query.get("to"), -1)}T00:00:00Z` : "",
      after: query.get("after"), limit: 100 };
    const res = await api(`/api/v1/sessions${qs(params)}`);
    if (!res.ok) throw new Error(detail(res.data, res.status));
    const nextAfter = res.headers.get("X-Next-After");
    const more = new URLSearchParams(query);
    if (nextAfter) more.set("after", nextAfter);
    return h("div", {}, title("Sessions"),
      filterForm([["station_id", "Station"], ["id_tag", "Id token"],
        ["status", "Status", "select", [["", "Any"], ["active", "Active"], ["completed", "Completed"], ["incomplete", "Incomplete"]]],
        ["flag", "Flag"], ["review_required", "Review", "select", [["", "Any"], ["true", "Held for review"], ["false", "Not held"]]],
        ["from", "Started from", "date"], ["to", "Started to", "date"]], query, "/sessions"),
      h("section", { "aria-label": "Sessions" }, sessionTable(res.data),
        h("div", { class: "pager" }, query.get("after") ? link(`#/sessions${qs(Object.fromEntries([...query].filter(([k]) => k !== "after")))}`, "First page") : null,
          nextAfter ? link(`#/sessions?${more}`, "Next page") : null)));
  }

  function framesTable(frames) {
    return table(null, ["Log position", "Received", "Direction", "Action", "Frame"], frames.map((f) => row([
      h("code", {}, f.log_position), time(f.received_at), f.direction === "INBOUND" ? "station → ledger" : "ledger → station",
      f.action || (f.message_type === 3 ? "CALLRESULT" : f.message_type === 4 ? "CALLERROR" : "–"), h("code", { class: "raw" }, f.raw)])), { id: "frames" });
  }

  async function sessionPage(query, id) {
    const base = `/api/v1/sessions/${encodeURIComponent(id)}`;
    const [x, curve, frames, invoices] = await Promise.all([get(base), get(`${base}/curve`), get(`${base}/frames`), get(`/api/v1/invoices${qs({ session_id: id })}`)]);
    return h("div", {}, title(`Session ${x.session_id}`),
      h("div", { class: "grid" },
        h("section", { "aria-labelledby": "h-fig" }, h("h2", { id: "h-fig" }, "Figures"), h("dl", { class: "facts" },
          h("dt", {}, "Station"), h("dd", {}, link(`#/stations/${encodeURIComponent(x.station_id)}`, x.station_id), `, connector ${connectorName(x)} (${x.ocpp_version})`),
          h("dt", {}, "Transaction"), h("dd", {}, x.transaction_ref),
          h("dt", {}, "Id token"), h("dd", {}, x.id_tag || "–"),
          h("dt", {}, "Started"), h("dd", {}, time(x.started_at)), h("dt", {}, "Stopped"), h("dd", {}, time(x.stopped_at), x.stop_reason ? ` (${x.stop_reason})` : ""),
          h("dt", {}, "Meter start"), h("dd", {}, x.meter_start_wh === null ? "–" : `${x.meter_start_wh} Wh`),
          h("dt", {}, "Meter stop"), h("dd", {}, x.meter_stop_wh === null ? "–" : `${x.meter_stop_wh} Wh`),
          h("dt", {}, "Energy"), h("dd", { id: "session-energy" }, `${kwh(x.energy_wh)} (${x.energy_wh} Wh)`),
          h("dt", {}, "Status"), h("dd", {}, x.status),
          h("dt", {}, "Flags"), h("dd", {}, x.flags.length ? x.flags.join(", ") : "none"),
          h("dt", {}, "Review"), h("dd", {}, yesNo(x.review_required, "▲ held for review", "● not held")))),
        h("section", { "aria-labelledby": "h-inv" }, h("h2", { id: "h-inv" }, "Invoices"),
          invoices.length ? h("ul", {}, invoices.map((i) => h("li", {}, link(`#/invoices/${encodeURIComponent(i.invoice_number)}`, i.invoice_number), ` ${i.document_type.replace("_", " ")}, ${i.total_incl_vat} ${i.currency}`)))
            : h("p", {}, x.review_required ? "None: held for review." : "None yet."))),
      h("section", { "aria-labelledby": "h-curve" }, h("h2", { id: "h-curve" }, "Charging curve"), curveChart(curve),
        h("details", {}, h("summary", {}, "The readings as a table"), table(null, ["Time", { text: "Register", num: true }, { text: "Energy", num: true }, { text: "Power", num: true }], curve.points.map((p) => row([
          time(p.at), num(p.register_wh === null ? "–" : `${p.register_wh} Wh`), num(p.energy_wh === null ? "–" : `${p.energy_wh} Wh`),
          num(p.power_w === null ? "–" : `${p.power_w} W${p.power_derived ? " (avg.)" : ""}`)])))),
        table("Charging periods", ["From", "To", "State", "Station said", { text: "Energy", num: true }], curve.charging_periods.map((p) => row([time(p.start), time(p.end), p.state, p.station_status || "–", num(kwh(p.energy_wh))])), { empty: "None." })),
      h("section", { "aria-labelledby": "h-frames" }, h("h2", { id: "h-frames" }, `OCPP frames behind it (${frames.length}, in log order)`), framesTable(frames)));
  }

  // ---- Invoices -----------------------------------------------------------------------------
  async function invoicesPage(query) {
    const filters = { from: query.get("from"), to: query.get("to"), station_id: query.get("station_id"), document_type: query.get("document_type") };
    const [res, totals] = await Promise.all([
      api(`/api/v1/invoices${qs({ ...filters, after: query.get("after"), limit: 100 })}`),
      get(`/api/v1/invoices/totals${qs(filters)}`)]);
    if (!res.ok) throw new Error(detail(res.data, res.status));
    const nextAfter = res.headers.get("X-Next-After");
    const more = new URLSearchParams(query);
    if (nextAfter) more.set("after", nextAfter);
    const range = qs({ from: filters.from, to: filters.to });
    return h("div", {}, title("Invoices"),
      filterForm([["from", "Stopped from", "date"], ["to", "Stopped before", "date"], ["station_id", "Station"],
        ["document_type", "Type", "select", [["", "Any"], ["invoice", "Invoices"], ["credit_note", "Credit notes"]]]], query, "/invoices"),
      h("section", { "aria-labelledby": "h-totals" }, h("h2", { id: "h-totals" }, "Totals"),
        table(null, ["Currency", { text: "Documents", num: true }, { text: "Credit notes", num: true }, { text: "Energy", num: true }, { text: "Excl. VAT", num: true }, { text: "VAT", num: true }, { text: "Incl. VAT", num: true }],
          totals.map((t) => row([t.currency, num(t.documents), num(t.credit_notes), num(kwh(t.energy_wh)), num(t.total_excl_vat), num(t.total_vat), num(t.total_incl_vat)])), { id: "totals", empty: "No documents." }),
        can("finance") ? h("p", {}, "Exports for these days: ", link(`/api/v1/invoices.csv${range}`, "invoices as CSV"), " · ", link(`/api/v1/cdrs${range}`, "CDRs (OCPI JSON)")) : null),
      h("section", { "aria-label": "Documents" }, table(null, ["Number", "Type", "Relation", "Session", "Station", "Stopped", { text: "Energy", num: true }, { text: "Total incl. VAT", num: true }, "Signature"],
        res.data.map((i) => row([link(`#/invoices/${encodeURIComponent(i.invoice_number)}`, i.invoice_number), i.document_type.replace("_", " "),
          i.cancels ? h("span", {}, "cancels ", link(`#/invoices/${encodeURIComponent(i.cancels)}`, i.cancels)) : i.replaces ? h("span", {}, "replaces ", link(`#/invoices/${encodeURIComponent(i.replaces)}`, i.replaces)) : "–",
          link(`#/sessions/${encodeURIComponent(i.session_id)}`, i.session_id), i.station_id, time(i.stopped_at), num(kwh(i.energy_wh)), num(`${i.total_incl_vat} ${i.currency}`), signatureBadge(i.signature_status)])),
        { id: "invoices", empty: "No documents match." }),
      h("div", { class: "pager" }, nextAfter ? link(`#/invoices?${more}`, "Next page") : null)));
  }

  async function invoicePage(query, number) {
    const doc = await get(`/api/v1/invoices/${encodeURIComponent(number)}`);
    const related = (await get(`/api/v1/invoices${qs({ session_id: doc.session_id })}`)).filter((d) => d.invoice_number !== number);
    const enc = encodeURIComponent(number);
    const relation = [];
    if (doc.cancels) relation.push(h("li", {}, "Cancels ", link(`#/invoices/${encodeURIComponent(doc.cancels)}`, doc.cancels)));
    if (doc.replaces) relation.push(h("li", {}, "Replaces ", link(`#/invoices/${encodeURIComponent(doc.replaces)}`, doc.replaces)));
    for (const d of related) {
      if (d.cancels === number) relation.push(h("li", {}, "Cancelled by ", link(`#/invoices/${encodeURIComponent(d.invoice_number)}`, d.invoice_number)));
      else if (d.replaces === number) relation.push(h("li", {}, "Replaced by ", link(`#/invoices/${encodeURIComponent(d.invoice_number)}`, d.invoice_number)));
      else relation.push(h("li", {}, "Same session: ", link(`#/invoices/${encodeURIComponent(d.invoice_number)}`, d.invoice_number), ` (${d.document_type.replace("_", " ")})`));
    }
    return h("div", {}, title(`${doc.document_type === "credit_note" ? "Credit note" : "Invoice"} ${doc.invoice_number}`),
      h("nav", { "aria-label": "Evidence chain" }, h("ol", { class: "chain" },
        h("li", {}, h("strong", {}, doc.invoice_number)), h("li", {}, link(`#/invoices/${enc}/cdr`, "CDR")),
        h("li", {}, link(`#/sessions/${encodeURIComponent(doc.session_id)}`, `Session ${doc.session_id}`)),
        h("li", {}, link(`#/invoices/${enc}/evidence`, "Frames (evidence)")))),
      h("div", { class: "grid" },
        h("section", { "aria-labelledby": "h-doc" }, h("h2", { id: "h-doc" }, "Document"), h("dl", { class: "facts" },
          h("dt", {}, "Station"), h("dd", {}, link(`#/stations/${encodeURIComponent(doc.station_id)}`, doc.station_id), `, connector ${doc.connector_id}`),
          h("dt", {}, "Id token"), h("dd", {}, doc.id_tag || "–"),
          h("dt", {}, "Session"), h("dd", {}, `${time(doc.started_at)} – ${time(doc.stopped_at)}`),
          h("dt", {}, "Energy"), h("dd", {}, `${kwh(doc.energy_wh)} (${doc.meter_start_wh ?? "–"} → ${doc.meter_stop_wh ?? "–"} Wh)`),
          h("dt", {}, "Tariff"), h("dd", {}, link(`#/tariffs/${encodeURIComponent(doc.tariff_id)}`, doc.tariff_id)),
          h("dt", {}, "Total"), h("dd", { id: "invoice-total" }, `${doc.total_incl_vat} ${doc.currency} incl. VAT (${doc.total_excl_vat} excl., VAT ${doc.total_vat})`),
          h("dt", {}, "Signed meter values"), h("dd", {}, signatureBadge(doc.signature_status),
            doc.signed_energy_wh !== null ? ` signed energy ${kwh(doc.signed_energy_wh)}` : "",
            doc.signature_status !== "none" ? h("span", {}, " · ", link(`/api/v1/invoices/${enc}/signed-data.xml`, "signed data (XML for the transparency software)")) : ""),
          h("dt", {}, "Log position"), h("dd", {}, h("code", {}, doc.log_position)),
          h("dt", {}, "Printable"), h("dd", {}, link(`/api/v1/invoices/${enc}.html`, "as a page")))),
        h("section", { "aria-labelledby": "h-rel" }, h("h2", { id: "h-rel" }, "Related documents"), relation.length ? h("ul", { id: "relations" }, relation) : h("p", {}, "None."))),
      h("section", { "aria-labelledby": "h-lines" }, h("h2", { id: "h-lines" }, "Lines"),
        table(null, ["Description", { text: "Quantity", num: true }, "Unit", { text: "Unit price", num: true }, { text: "VAT %", num: true }, { text: "Excl. VAT", num: true }, { text: "VAT", num: true }, { text: "Incl. VAT", num: true }],
          doc.lines.map((l) => row([l.description, num(l.quantity), l.unit, num(l.unit_price_excl_vat), num(l.vat_rate_percent), num(l.amount_excl_vat), num(l.vat_amount), num(l.amount_incl_vat)])))));
  }

  async function evidencePage(query, number) {
    const ev = await get(`/api/v1/invoices/${encodeURIComponent(number)}/evidence`);
    const enc = encodeURIComponent(number);
    return h("div", {}, title(`Evidence of ${number}`),
      h("nav", { "aria-label": "Evidence chain" }, h("ol", { class: "chain" },
        h("li", {}, link(`#/invoices/${enc}`, number)), h("li", {}, link(`#/invoices/${enc}/cdr`, "CDR")),
        h("li", {}, link(`#/sessions/${encodeURIComponent(ev.session.session_id)}`, `Session ${ev.session.session_id}`)), h("li", {}, h("strong", {}, "Frames")))),
      h("section", {}, h("h2", {}, "The session as the ledger holds it"), h("dl", { class: "facts" },
        h("dt", {}, "Revision"), h("dd", {}, ev.session.revision), h("dt", {}, "Energy"), h("dd", {}, `${ev.session.energy_wh} Wh`),
        h("dt", {}, "Meter"), h("dd", {}, `${ev.session.meter_start_wh ?? "–"} → ${ev.session.meter_stop_wh ?? "–"} Wh`),
        h("dt", {}, "Flags"), h("dd", {}, ev.session.flags.join(", ") || "none"))),
      h("section", {}, h("h2", {}, `Every frame that made these figures (${ev.frames.length})`), framesTable(ev.frames)));
  }

  async function cdrPage(query, number) {
    const res = await fetch(`/api/v1/invoices/${encodeURIComponent(number)}/cdr`, { credentials: "same-origin" });
    if (res.status === 401) { showLogin("Your session has ended: log in again."); throw new Stop(); }
    const text = await res.text();
    if (!res.ok) throw new Error(detail((() => { try { return JSON.parse(text); } catch (e) { return text; } })(), res.status));
    const enc = encodeURIComponent(number);
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as sent */ }
    return h("div", {}, title(`CDR of ${number}`),
      h("nav", { "aria-label": "Evidence chain" }, h("ol", { class: "chain" }, h("li", {}, link(`#/invoices/${enc}`, number)), h("li", {}, h("strong", {}, "CDR")),
        h("li", {}, link(`#/invoices/${enc}/evidence`, "Session and frames")))),
      h("section", {}, h("p", {}, "The priced OCPI 2.2.1 CDR this document was made from (numbers as stored)."), h("pre", { class: "json", id: "cdr" }, pretty)));
  }

  // ---- Review -------------------------------------------------------------------------------
  async function reviewPage() {
    const held = await get("/api/v1/invoices/held");
    const decided = can("audit") ? await get("/api/v1/audit?kind=review&limit=1000") : null;
    const mayDecide = can("finance");
    const rows = held.map((x) => {
      const note = h("input", { id: `note-${x.session_id}`, name: "note", maxlength: 1000 });
      const decide = (decision) => async () => {
        const res = await api(`/api/v1/invoices/held/${encodeURIComponent(x.session_id)}/${decision}`, { method: "POST",
          body: { reviewer: state.me ? state.me.name : "console", note: note.value, revision: x.revision } });
        if (!res.ok) { toast(`${decision} ${x.session_id}: ${detail(res.data, res.status)}`); return; }
        toast(`${x.session_id}: ${decision === "release" ? "released, the invoice follows" : "dismissed"} (decided by ${res.data.reviewer} at ${time(res.data.decided_at)})`);
        render();
      };
      return row([link(`#/sessions/${encodeURIComponent(x.session_id)}`, x.session_id), x.station_id, x.id_tag || "–", time(x.stopped_at), num(kwh(x.energy_wh)),
        x.reason, x.flags.join(", ") || "–",
        mayDecide ? h("div", { class: "inline" }, h("label", { for: `note-${x.session_id}` }, "Note", note),
          h("button", { type: "button", onclick: decide("release") }, "Release"), h("button", { type: "button", class: "secondary", onclick: decide("dismiss") }, "Dismiss"))
          : h("span", { class: "muted" }, "finance decides")]);
    });
    return h("div", {}, title("Review queue"),
      h("p", {}, "Completed sessions not invoiced until a person decides: flags that need a look, or signed meter values that do not back the figures."),
      h("section", { "aria-label": "Held sessions" }, table(null, ["Session", "Station", "Id token", "Stopped", { text: "Energy", num: true }, "Reason", "Flags", "Decision"], rows, { id: "held", empty: "Nothing is held." })),
      decided ? h("section", { "aria-labelledby": "h-decided" }, h("h2", { id: "h-decided" }, "Decisions"),
        table(null, ["When", "Session", "Decision", "Reviewer", "Who (account)", "Note"], decided.slice().reverse().map((d) => row([time(d.occurred_at),
          link(`#/sessions/${encodeURIComponent(d.subject)}`, d.subject), d.change.decision, d.change.reviewer, d.actor || "–", d.change.note || "–"])), { id: "decisions", empty: "No decision yet." })) : null);
  }

  // ---- Tariffs ------------------------------------------------------------------------------
  function fieldErrors(data, status) {
    const found = data && data.detail;
    if (!Array.isArray(found)) return h("p", { role: "alert" }, detail(data, status));
    return h("ul", { class: "errors", role: "alert", id: "tariff-errors" }, found.map((e) => {
      const path = (e.loc || []).filter((p, i) => !(i === 0 && p === "body"));
      const where = path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "") || "(document)";
      return h("li", {}, h("code", {}, where), `: ${e.msg}`);
    }));
  }

  async function tariffsPage() {
    const [tariffs, assignments] = await Promise.all([get("/api/v1/tariffs"), get("/api/v1/tariff-assignments")]);
    const sections = [title("Tariffs"),
      h("section", { "aria-labelledby": "h-t" }, h("h2", { id: "h-t" }, "Tariffs (newest versions)"),
        table(null, ["Tariff", { text: "Revision", num: true }, "Currency", "Valid from", "Valid to", "Stored"], tariffs.map((t) => row([
          link(`#/tariffs/${encodeURIComponent(t.tariff_id)}`, t.tariff_id), num(t.revision), t.currency, time(t.valid_from), time(t.valid_to), time(t.put_at)])), { id: "tariffs", empty: "No tariff stored." })),
      h("section", { "aria-labelledby": "h-a" }, h("h2", { id: "h-a" }, "Assignments"),
        table(null, ["#", "Tariff", "Applies to", "Valid from", "Valid to", "Assigned"], assignments.map((a) => row([a.assignment_id, a.tariff_id,
          a.station_id ? `station ${a.station_id}${a.connector_id !== null ? `, connector ${connectorName(a)}` : ""}` : "default (every station)",
          time(a.valid_from), time(a.valid_to), time(a.assigned_at)])), { id: "assignments", empty: "No assignment: nothing is priced." })),
      previewSection(tariffs)];
    if (can("finance")) sections.push(uploadSection(), assignSection(tariffs));
    return h("div", {}, sections);
  }

  function previewSection(tariffs) {
    const out = h("div", { id: "preview-result", "aria-live": "polite" });
    const field = (name, text, attrs) => h("label", { for: `p-${name}` }, text, h("input", { id: `p-${name}`, name, ...attrs }));
    const form = h("form", { class: "inline", "aria-labelledby": "h-p", onsubmit: async (e) => {
      e.preventDefault();
      const v = form.elements;
      const startAt = v.start.value ? `${v.start.value}:00Z` : new Date().toISOString();
      const res = await api(`/api/v1/tariffs/${encodeURIComponent(v.tariff.value)}/preview`, { method: "POST", body: {
        energy_wh: Number(v.energy_wh.value), start: startAt, duration_s: Number(v.duration_min.value) * 60,
        parking_s: Number(v.parking_min.value) * 60, time_zone: v.time_zone.value || "UTC" } });
      if (!res.ok) { out.replaceChildren(fieldErrors(res.data, res.status)); return; }
      const p = res.data;
      out.replaceChildren(
        table(`As an invoice: ${p.tariff_id} revision ${p.revision}`, ["Description", { text: "Quantity", num: true }, "Unit", { text: "Unit price", num: true }, { text: "VAT %", num: true }, { text: "Excl. VAT", num: true }, { text: "VAT", num: true }, { text: "Incl. VAT", num: true }],
          p.invoice_lines.map((l) => row([l.description, num(l.quantity), l.unit, num(l.unit_price_excl_vat), num(l.vat_rate_percent || "–"), num(l.amount_excl_vat), num(l.vat_amount), num(l.amount_incl_vat)])), { id: "preview-lines", empty: "Nothing to pay." }),
        h("p", { id: "preview-total" }, h("strong", {}, `Total: ${p.total_incl_vat} ${p.currency} incl. VAT`), ` (${p.total_excl_vat} excl. VAT, VAT ${p.total_vat})`),
        h("details", {}, h("summary", {}, "Each priced piece, unrounded"),
          table(null, ["Dimension", "From", "To", { text: "Quantity", num: true }, { text: "Billed", num: true }, { text: "Unit price", num: true }, { text: "Excl. VAT", num: true }, { text: "Incl. VAT", num: true }],
            p.lines.map((l) => row([l.dimension, time(l.start), time(l.end), num(l.quantity), num(l.billed_quantity), num(l.unit_price), num(l.cost_excl_vat), num(l.cost_incl_vat)])))));
    } },
    h("label", { for: "p-tariff" }, "Tariff", h("select", { id: "p-tariff", name: "tariff" }, tariffs.map((t) => h("option", { value: t.tariff_id }, t.tariff_id)))),
    field("energy_wh", "Energy (Wh)", { type: "number", min: 0, value: 20000, required: true }),
    field("start", "Start (UTC)", { type: "datetime-local", value: `${today()}T18:00` }),
    field("duration_min", "Charging (minutes)", { type: "number", min: 1, value: 60, required: true }),
    field("parking_min", "Parking after (minutes)", { type: "number", min: 0, value: 0 }),
    field("time_zone", "Time zone", { value: "UTC" }),
    h("button", { type: "submit", disabled: tariffs.length ? null : true }, "Price it"));
    return h("section", { "aria-labelledby": "h-p" }, h("h2", { id: "h-p" }, "Price preview"), form, out);
  }

  function uploadSection() {
    const out = h("div", { id: "upload-result", "aria-live": "polite" });
    const text = h("textarea", { id: "u-json", name: "document", spellcheck: "false", "aria-describedby": "u-help upload-result" });
    const file = h("input", { id: "u-file", type: "file", accept: ".json,application/json", onchange: async () => {
      if (file.files.length) text.value = await file.files[0].text();
    } });
    const form = h("form", { "aria-labelledby": "h-u", onsubmit: async (e) => {
      e.preventDefault();
      text.classList.remove("field-error");
      let id = "";
      try { id = JSON.parse(text.value).id || ""; } catch (exc) {
        text.classList.add("field-error");
        out.replaceChildren(h("ul", { class: "errors", role: "alert", id: "tariff-errors" }, h("li", {}, h("code", {}, "(document)"), `: not JSON: ${exc.message}`)));
        return;
      }
      if (!id) { text.classList.add("field-error"); out.replaceChildren(h("ul", { class: "errors", role: "alert", id: "tariff-errors" }, h("li", {}, h("code", {}, "id"), ": the tariff needs an id"))); return; }
      const res = await api(`/api/v1/tariffs/${encodeURIComponent(id)}`, { method: "PUT", body: text.value });
      if (!res.ok) { text.classList.add("field-error"); out.replaceChildren(fieldErrors(res.data, res.status)); text.focus(); return; }
      out.replaceChildren(h("p", { role: "status" }, `Stored ${id} revision ${res.headers.get("X-Tariff-Revision")}${res.status === 200 ? " (the same as before)" : ""}.`));
      toast(`Tariff ${id} stored`);
    } },
    h("p", { id: "u-help", class: "muted" }, "An OCPI 2.2.1 Tariff object; it is stored as the next version of the tariff named by its id."),
    h("label", { for: "u-file" }, "Tariff JSON file", file), h("label", { for: "u-json" }, "Tariff JSON", text),
    h("button", { type: "submit" }, "Store tariff"));
    return h("section", { "aria-labelledby": "h-u", id: "upload" }, h("h2", { id: "h-u" }, "Upload a tariff"), form, out);
  }

  function assignSection(tariffs) {
    const out = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "inline", "aria-labelledby": "h-as", onsubmit: async (e) => {
      e.preventDefault();
      const v = form.elements;
      const body = { tariff_id: v.tariff.value };
      if (v.station.value) body.station_id = v.station.value;
      if (v.connector.value) body.connector_id = Number(v.connector.value);
      if (v.valid_from.value) body.valid_from = `${v.valid_from.value}:00Z`;
      const res = await api("/api/v1/tariff-assignments", { method: "POST", body });
      if (!res.ok) { out.replaceChildren(fieldErrors(res.data, res.status)); return; }
      toast(`Assignment ${res.data.assignment_id} made`);
      render();
    } },
    h("label", { for: "a-tariff" }, "Tariff to assign", h("select", { id: "a-tariff", name: "tariff" }, tariffs.map((t) => h("option", { value: t.tariff_id }, t.tariff_id)))),
    h("label", { for: "a-station" }, "Station (empty: default)", h("input", { id: "a-station", name: "station" })),
    h("label", { for: "a-connector" }, "Connector (optional)", h("input", { id: "a-connector", name: "connector", type: "number", min: 0 })),
    h("label", { for: "a-from" }, "Valid from (UTC, empty: now)", h("input", { id: "a-from", name: "valid_from", type: "datetime-local" })),
    h("button", { type: "submit", disabled: tariffs.length ? null : true }, "Assign"));
    return h("section", { "aria-labelledby": "h-as" }, h("h2", { id: "h-as" }, "Assign a tariff"), form, out);
  }

  async function tariffPage(query, id) {
    const enc = encodeURIComponent(id);
    const newest = await api(`/api/v1/tariffs/${enc}`);
    if (!newest.ok) throw new Error(detail(newest.data, newest.status));
    const last = Number(newest.headers.get("X-Tariff-Revision"));
    const versions = await Promise.all(Array.from({ length: last }, (_, n) => get(`/api/v1/tariffs/${enc}?revision=${n + 1}`)));
    return h("div", {}, title(`Tariff ${id}`),
      h("section", {}, h("h2", {}, "Versions"), table(null, [{ text: "Revision", num: true }, "Currency", "Valid from", "Valid to", "Last updated"],
        versions.map((v, n) => row([num(n + 1), v.currency, time(v.start_date_time), time(v.end_date_time), time(v.last_updated)])).reverse(), { id: "versions" })),
      h("section", {}, h("h2", {}, `Revision ${last} as stored (OCPI 2.2.1)`), h("pre", { class: "json" }, JSON.stringify(newest.data, null, 2))));
  }

  // ---- Energy -------------------------------------------------------------------------------
  const MOST_BARS = 40;
  function chartOf(totals, groupBy, key) {
    const items = totals.map((t) => ({ label: String(key(t)), value: t.energy_wh, text: kwh(t.energy_wh) }));
    if (groupBy === "day" || items.length <= MOST_BARS) return bars(items, { caption: `Energy per ${groupBy}`, unit: " Wh" });
    // Hundreds of stations or tokens make no readable chart: the largest, and all in the table.
    const largest = items.slice().sort((a, b) => b.value - a.value).slice(0, MOST_BARS);
    return h("figure", {}, bars(largest, { caption: `The ${MOST_BARS} largest of ${items.length}`, unit: " Wh" }),
      h("figcaption", { class: "muted" }, `The ${MOST_BARS} largest of ${items.length}; every one is in the table below.`));
  }

  async function energyPage(query) {
    const groupBy = query.get("group_by") || "day";
    const from = query.get("from") || daysBefore(today(), 13);
    const to = query.get("to") || today();
    const params = { group_by: groupBy, from: `${from}T00:00:00Z`, to: `${daysBefore(to, -1)}T00:00:00Z`, station_id: query.get("station_id") };
    const totals = await get(`/api/v1/energy${qs(params)}`);
    const key = { day: (t) => t.day, station: (t) => t.station_id, token: (t) => t.id_tag || "(no token)" }[groupBy] || ((t) => t.day);
    const form = filterForm([["group_by", "Per", "select", [["day", "Day"], ["station", "Station"], ["token", "Id token"]]],
      ["from", "From (UTC day)", "date"], ["to", "To (UTC day, included)", "date"], ["station_id", "Station (optional)"]], query, "/energy");
    form.elements.group_by.value = groupBy; form.elements.from.value = from; form.elements.to.value = to;
    const sum = totals.reduce((acc, t) => acc + t.energy_wh, 0);
    return h("div", {}, title("Energy"), form,
      h("section", { "aria-label": "Chart" }, chartOf(totals, groupBy, key)),
      h("section", { "aria-label": "Table" }, h("p", {}, `${kwh(sum)} in all. `, link(`/api/v1/energy.csv${qs(params)}`, "Download as CSV")),
        table(null, [groupBy === "token" ? "Id token" : groupBy === "station" ? "Station" : "Day", { text: "Energy", num: true }, { text: "Wh", num: true }, { text: "Sessions", num: true }],
          totals.map((t) => row([String(key(t)), num(kwh(t.energy_wh)), num(t.energy_wh), num(t.sessions)])), { id: "energy", empty: "No energy in these days." })));
  }

  // ---- Users and API tokens -----------------------------------------------------------------
  const ROLES = ["viewer", "operator", "finance", "admin"];
  const roleSelect = (id, value) => h("select", { id, name: "role" }, ROLES.map((r) => h("option", { value: r, selected: r === value ? true : null }, r)));

  async function usersPage() {
    const [users, tokens] = await Promise.all([get("/api/v1/users"), get("/api/v1/api-tokens")]);
    const out = h("div", { id: "users-result", "aria-live": "polite" });
    const act = async (path, method, body, done) => {
      const res = await api(path, { method, body });
      if (!res.ok) { out.replaceChildren(h("p", { role: "alert" }, detail(res.data, res.status))); return; }
      if (done) done(res.data); else { toast("Saved"); render(); }
    };
    const userRows = users.map((u) => {
      const id = `r-${u.name}`;
      return row([u.name, h("label", { for: id }, h("span", { class: "hide-narrow" }, "Role"), roleSelect(id, u.role)),
        u.enabled ? h("span", { class: "badge ok" }, "● enabled") : h("span", { class: "badge bad" }, "✖ disabled"),
        h("div", { class: "inline" },
          h("button", { type: "button", class: "secondary", onclick: () => act(`/api/v1/users/${encodeURIComponent(u.name)}`, "PATCH", { role: document.getElementById(id).value }) }, `Save role of ${u.name}`),
          h("button", { type: "button", class: u.enabled ? "danger" : "secondary", onclick: () => act(`/api/v1/users/${encodeURIComponent(u.name)}`, "PATCH", { enabled: !u.enabled }) }, u.enabled ? `Disable ${u.name}` : `Enable ${u.name}`))]);
    });
    const add = h("form", { class: "inline", "aria-labelledby": "h-add", onsubmit: (e) => {
      e.preventDefault();
      const v = add.elements;
      act("/api/v1/users", "POST", { name: v.name.value, role: v.role.value, password: v.password.value });
    } }, h("label", { for: "n-name" }, "Name", h("input", { id: "n-name", name: "name", required: true, autocomplete: "off" })),
    h("label", { for: "n-role" }, "Role", roleSelect("n-role", "viewer")),
    h("label", { for: "n-pw" }, "Password", h("input", { id: "n-pw", name: "password", type: "password", required: true, autocomplete: "new-password" })),
    h("button", { type: "submit" }, "Add user"));
    const tokenRows = tokens.map((t) => row([t.name, t.role, time(t.created_at), time(t.expires_at),
      t.revoked_at ? `revoked ${time(t.revoked_at)}` : h("button", { type: "button", class: "danger", onclick: () => act(`/api/v1/api-tokens/${encodeURIComponent(t.name)}`, "DELETE") }, `Revoke ${t.name}`)]));
    const create = h("form", { class: "inline", "aria-labelledby": "h-tok", onsubmit: (e) => {
      e.preventDefault();
      const v = create.elements;
      const body = { name: v.name.value, role: v.role.value };
      if (v.expires.value) body.expires_at = `${v.expires.value}T00:00:00Z`;
      act("/api/v1/api-tokens", "POST", body, (made) => out.replaceChildren(h("p", { role: "status" }, `Token ${made.name} (shown this once, copy it now): `, h("code", { id: "new-token" }, made.token))));
    } }, h("label", { for: "t-name" }, "Name", h("input", { id: "t-name", name: "name", required: true, autocomplete: "off" })),
    h("label", { for: "t-role" }, "Role", roleSelect("t-role", "viewer")),
    h("label", { for: "t-exp" }, "Expires (optional)", h("input", { id: "t-exp", name: "expires", type: "date" })),
    h("button", { type: "submit" }, "Create token"));
    return h("div", {}, title("Users and API tokens"), out,
      h("section", { "aria-labelledby": "h-users" }, h("h2", { id: "h-users" }, "Users"), table(null, ["Name", "Role", "Login", "Change"], userRows, { id: "users" }),
        h("h2", { id: "h-add" }, "Add a user"), add),
      h("section", { "aria-labelledby": "h-tokens" }, h("h2", { id: "h-tokens" }, "API tokens"), table(null, ["Name", "Role", "Created", "Expires", ""], tokenRows, { id: "tokens", empty: "No API token." }),
        h("h2", { id: "h-tok" }, "Create a token"), create));
  }

  // ---- Start --------------------------------------------------------------------------------
  async function boot() {
    document.getElementById("logout").addEventListener("click", async () => {
      await api("/api/v1/session", { method: "DELETE" });
      showLogin("Logged out.");
    });
    window.addEventListener("hashchange", () => { render(); document.getElementById("main").focus(); });
    // Opened on the fleet, the page asks for the fleet while it asks who is logged in.
    const { path, query } = where();
    if (path === "/") {
      const fleetPath = `/api/v1/fleet${qs({ q: query.get("q"), status: query.get("status"), fault: query.get("fault"), online: query.get("online"), limit: 10000 })}`;
      state.early.set(fleetPath, fetch(fleetPath, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : null)).catch(() => null));
    }
    const res = await api("/api/v1/session");
    if (res.ok) { state.me = res.data; start(); return; }
    if (res.status === 404) { state.authOff = true; start(); return; }
    state.early.clear();
    showLogin();
  }

  boot();
})();
