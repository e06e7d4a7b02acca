// The Patriot Operation Center wall: map, counters, lists and the dinas table, kept live
// by the caseEvents and openCaseCounts subscriptions.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import "./poc.css";
import {
  AccessDenied,
  ApiError,
  isRefusal,
  liveClient,
  loadToken,
  query,
  saveToken,
} from "./api.js";
import * as Q from "./queries.js";

const OPEN_STATUSES = ["RECEIVED", "VERIFIED", "IN_PROGRESS", "ON_HOLD", "REOPENED"];
const STATUS_LABELS = {
  RECEIVED: "Diterima",
  VERIFIED: "Diverifikasi",
  IN_PROGRESS: "Ditindaklanjuti",
  ON_HOLD: "Ditunda",
  REOPENED: "Dibuka kembali",
  RESOLVED: "Selesai",
  CLOSED: "Ditutup",
  REJECTED: "Ditolak",
  DUPLICATE: "Duplikat",
};
const STATUS_COLORS = {
  RECEIVED: "#3b82f6",
  VERIFIED: "#8b5cf6",
  IN_PROGRESS: "#f59e0b",
  ON_HOLD: "#6b7280",
  REOPENED: "#ec4899",
};
const MARKER_PAGES = 5; // the newest 500 open cases on the map
const LIST_LENGTH = 10;
const SHARE_DAYS = 30;
const REFRESH_AFTER_MS = 800;

const config = JSON.parse(document.getElementById("poc-config").textContent);

const state = {
  token: loadToken(),
  filter: { kecamatanCodes: [], dinasCodes: [], categoryCodes: [] },
  client: null,
  subscriptions: [],
  // graphql-ws sends this very payload again when it reconnects: keeping the newest
  // cursor in it makes the server replay exactly the events missed while cut off.
  eventsPayload: null,
  lastCursor: null,
  ready: false,
  buffered: [],
  cases: new Map(), // ticket -> case, open cases shown on the map
  markers: new Map(), // ticket -> Leaflet marker
  newest: [],
  connection: "connecting",
  connects: 0,
  eventsSeen: 0,
  refreshTimer: null,
  generation: 0,
};

// -- DOM helpers ---------------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

// Names and titles come from partners' reports and imported boundary files: they reach
// the page as text nodes only, never as markup. Leaflet renders a string tooltip or
// popup as HTML, so it is given elements built here.
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function showError(message) {
  const banner = $("#error");
  banner.textContent = message || "";
  banner.hidden = !message;
}

const timeFormat = new Intl.DateTimeFormat("id-ID", {
  timeZone: "Asia/Jakarta",
  day: "2-digit",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});

function formatTime(iso) {
  return iso ? `${timeFormat.format(new Date(iso))} WIB` : "";
}

function lateBy(dueAt) {
  const hours = Math.floor((Date.now() - new Date(dueAt).getTime()) / 3_600_000);
  if (hours < 24) return `${Math.max(hours, 0)} jam`;
  return `${Math.floor(hours / 24)} hari`;
}

function isOverdue(item) {
  return OPEN_STATUSES.includes(item.status) && new Date(item.dueAt).getTime() < Date.now();
}

// -- layout --------------------------------------------------------------------------

function renderShell() {
  document.body.replaceChildren(
    element(
      "header",
      { className: "top" },
      element("h1", {}, "Patriot Operation Center · Kota Bekasi"),
      element("span", { id: "connection", className: "connection", "data-state": "connecting" }),
      element("span", { id: "clock", className: "clock" }),
      element(
        "form",
        { id: "signin", className: "signin", autocomplete: "off" },
        element("label", { for: "token" }, "Token petugas"),
        element("input", {
          id: "token",
          type: "password",
          autocomplete: "off",
          placeholder: "Tempel token di sini",
        }),
        element("button", { id: "signin-button", type: "submit" }, "Masuk"),
        element("button", { id: "signout-button", type: "button" }, "Keluar"),
        element("span", { id: "signin-state", className: "signin-state" }),
      ),
    ),
    element(
      "nav",
      { className: "filters" },
      element("label", {}, "Kecamatan ", element("select", { id: "filter-kecamatan" })),
      element("label", {}, "Dinas ", element("select", { id: "filter-dinas" })),
      element("label", {}, "Kategori ", element("select", { id: "filter-category" })),
    ),
    element("div", { id: "error", className: "error", role: "alert", hidden: "" }),
    element(
      "main",
      { className: "wall" },
      element("section", { id: "map", className: "map", "aria-label": "Peta kasus terbuka" }),
      element(
        "aside",
        { className: "side" },
        element(
          "section",
          { className: "panel" },
          element("h2", {}, "Kasus terbuka"),
          element("div", { id: "counters", className: "counters" }),
        ),
        element(
          "section",
          { className: "panel" },
          element("h2", {}, "Laporan terbaru"),
          element("ol", { id: "newest", className: "cases" }),
        ),
        element(
          "section",
          { className: "panel" },
          element("h2", {}, "Paling terlambat"),
          element("ol", { id: "overdue", className: "cases" }),
        ),
        element(
          "section",
          { className: "panel" },
          element("h2", {}, "Per dinas"),
          element(
            "table",
            { id: "dinas-table", className: "dinas" },
            element(
              "thead",
              {},
              element(
                "tr",
                {},
                element("th", {}, "Dinas"),
                element("th", {}, "Terbuka"),
                element("th", {}, "Terlambat"),
                element("th", { title: `Diselesaikan tepat waktu, ${SHARE_DAYS} hari terakhir` }, "Tepat waktu"),
              ),
            ),
            element("tbody", {}),
          ),
        ),
      ),
    ),
  );
  $("#token").value = state.token;
  renderSignIn();
  renderCounters({ total: 0, groups: [] });
}

function renderConnection() {
  const node = $("#connection");
  node.dataset.state = state.connection;
  node.textContent =
    state.connection === "connected"
      ? "● Langsung"
      : state.connection === "connecting"
        ? "● Menghubungkan…"
        : "● Terputus, menyambung ulang…";
}

function renderSignIn() {
  $("#signin-state").textContent = state.token ? "Masuk sebagai petugas" : "Belum masuk";
  $("#signout-button").hidden = !state.token;
}

function tick() {
  $("#clock").textContent = new Intl.DateTimeFormat("id-ID", {
    timeZone: "Asia/Jakarta",
    weekday: "long",
    day: "numeric",
    month: "long",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date());
}

// -- map -----------------------------------------------------------------------------

const map = { leaflet: null, boundaries: null, cases: null };

function setUpMap(kelurahan) {
  map.leaflet = L.map("map", { zoomControl: true, attributionControl: false });
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { maxZoom: 19 }).addTo(map.leaflet);
  }
  map.boundaries = L.geoJSON(
    {
      type: "FeatureCollection",
      features: kelurahan.map((k) => ({
        type: "Feature",
        geometry: k.geometry,
        properties: { code: k.code, name: k.name, kecamatan: k.kecamatan.code },
      })),
    },
    {
      style: () => ({ color: "#94a3b8", weight: 1, fillColor: "#1e293b", fillOpacity: 0.6 }),
      onEachFeature: (feature, layer) =>
        layer.bindTooltip(element("span", {}, feature.properties.name), { sticky: true }),
    },
  ).addTo(map.leaflet);
  map.cases = L.layerGroup().addTo(map.leaflet);
  const fit = () => {
    map.leaflet.invalidateSize();
    map.leaflet.fitBounds(map.boundaries.getBounds(), { padding: [12, 12] });
  };
  fit();
  // The wall's layout settles after the first paint (fonts, banner): refit to the space.
  new ResizeObserver(() => fit()).observe(document.getElementById("map"));
}

function highlightKecamatan() {
  const selected = state.filter.kecamatanCodes[0];
  map.boundaries.eachLayer((layer) => {
    const inside = !selected || layer.feature.properties.kecamatan === selected;
    layer.setStyle({ fillOpacity: inside ? 0.6 : 0.2, weight: inside ? 1 : 0.5 });
  });
}

function markerStyle(item) {
  const overdue = isOverdue(item);
  return {
    radius: overdue ? 8 : 6,
    color: overdue ? "#ef4444" : "#f8fafc",
    weight: overdue ? 3 : 1,
    fillColor: STATUS_COLORS[item.status] || "#64748b",
    fillOpacity: 0.95,
  };
}

function markerClass(item) {
  return `case-marker status-${item.status}${isOverdue(item) ? " overdue" : ""}`;
}

function placeMarker(item) {
  const existing = state.markers.get(item.ticket);
  if (!item.location || !OPEN_STATUSES.includes(item.status)) {
    if (existing) {
      map.cases.removeLayer(existing);
      state.markers.delete(item.ticket);
    }
    return;
  }
  const position = [item.location.lat, item.location.lon];
  let marker = existing;
  if (!marker) {
    marker = L.circleMarker(position, { ...markerStyle(item), className: markerClass(item) });
    marker.addTo(map.cases);
    state.markers.set(item.ticket, marker);
  } else {
    marker.setLatLng(position);
    marker.setStyle(markerStyle(item));
  }
  const path = marker.getElement();
  if (path) {
    path.setAttribute("class", `leaflet-interactive ${markerClass(item)}`);
    path.dataset.ticket = item.ticket;
    path.dataset.status = item.status;
  }
  marker.bindPopup(casePopup(item));
}

function casePopup(item) {
  const lines = [
    element("strong", {}, item.ticket),
    element("br"),
    item.title,
    element("br"),
    `${STATUS_LABELS[item.status] || item.status} · ${item.dinas?.shortName || ""}`,
  ];
  if (isOverdue(item)) lines.push(element("br"), element("em", {}, `Terlambat ${lateBy(item.dueAt)}`));
  return element("div", { className: "case-popup" }, ...lines);
}

// -- panels --------------------------------------------------------------------------

function renderCounters(counts) {
  const byStatus = Object.fromEntries(counts.groups.map((g) => [g.key, g.count]));
  const overdue = state.overdueTotal ?? 0;
  const tiles = [
    ["total", "Total terbuka", counts.total],
    ...OPEN_STATUSES.map((s) => [s, STATUS_LABELS[s], byStatus[s] || 0]),
    ["overdue", "Terlambat", overdue],
  ];
  $("#counters").replaceChildren(
    ...tiles.map(([key, label, value]) =>
      element(
        "div",
        { className: `counter counter-${key}`, "data-counter": key },
        element("span", { className: "value" }, value),
        element("span", { className: "label" }, label),
      ),
    ),
  );
}

function caseLine(item, detail) {
  return element(
    "li",
    { "data-ticket": item.ticket, className: isOverdue(item) ? "overdue" : "" },
    element("span", { className: "ticket" }, item.ticket),
    element("span", { className: "title" }, item.title),
    element(
      "span",
      { className: "meta" },
      [item.kelurahan?.name, item.dinas?.shortName, detail].filter(Boolean).join(" · "),
    ),
  );
}

function renderNewest() {
  $("#newest").replaceChildren(
    ...state.newest.slice(0, LIST_LENGTH).map((c) => caseLine(c, formatTime(c.createdAt))),
  );
}

function renderOverdue(cases) {
  $("#overdue").replaceChildren(
    ...cases.map((c) => caseLine(c, `terlambat ${lateBy(c.dueAt)}`)),
  );
  if (!cases.length) $("#overdue").append(element("li", { className: "empty" }, "Tidak ada"));
}

function renderDinasTable(backlog, stats) {
  const share = Object.fromEntries(stats.groups.map((g) => [g.key, g.onTimeShare]));
  const rows = backlog.map((g) =>
    element(
      "tr",
      { "data-dinas": g.key },
      element("td", {}, g.label || g.key || "—"),
      element("td", { className: "number" }, g.open),
      element("td", { className: g.overdue ? "number late" : "number" }, g.overdue),
      element(
        "td",
        { className: "number" },
        share[g.key] === undefined || share[g.key] === null
          ? "—"
          : `${Math.round(share[g.key] * 100)}%`,
      ),
    ),
  );
  $("#dinas-table tbody").replaceChildren(...rows);
}

// -- data ----------------------------------------------------------------------------

function caseFilter(extra = {}) {
  const f = {};
  for (const [name, values] of Object.entries(state.filter)) if (values.length) f[name] = values;
  return { ...f, ...extra };
}

async function refreshTables() {
  const generation = state.generation;
  const now = new Date();
  const from = new Date(now.getTime() - SHARE_DAYS * 86_400_000);
  const data = await query(config, state.token, Q.TABLES, {
    filter: caseFilter(),
    from: from.toISOString(),
    to: now.toISOString(),
    first: LIST_LENGTH,
  });
  if (generation !== state.generation) return;
  showError("");
  state.overdueTotal = data.caseBacklog.reduce((sum, g) => sum + g.overdue, 0);
  const overdueTile = document.querySelector('[data-counter="overdue"] .value');
  if (overdueTile) overdueTile.textContent = state.overdueTotal;
  renderOverdue(data.overdueCases);
  renderDinasTable(data.caseBacklog, data.caseStats);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    refreshTables().catch(reportError);
  }, REFRESH_AFTER_MS);
}

async function loadSnapshot() {
  const generation = state.generation;
  const open = [];
  let after = null;
  for (let page = 0; page < MARKER_PAGES; page += 1) {
    const data = await query(config, state.token, Q.OPEN_CASES, {
      filter: caseFilter({ statuses: OPEN_STATUSES }),
      after,
    });
    open.push(...data.cases.edges.map((e) => e.node));
    if (!data.cases.pageInfo.hasNextPage) break;
    after = data.cases.pageInfo.endCursor;
  }
  if (generation !== state.generation) return;
  for (const item of open) {
    state.cases.set(item.ticket, item);
    placeMarker(item);
  }
  state.newest = open.slice(0, LIST_LENGTH);
  renderNewest();
  await refreshTables();
}

function applyEvent(update) {
  state.eventsSeen += 1;
  const item = update.case;
  state.cases.set(item.ticket, item);
  placeMarker(item);
  if (update.event.type === "CREATED") {
    state.newest = [item, ...state.newest.filter((c) => c.ticket !== item.ticket)];
  } else {
    state.newest = state.newest.map((c) => (c.ticket === item.ticket ? item : c));
  }
  renderNewest();
  scheduleRefresh();
}

function reportError(error) {
  if (error instanceof TypeError) {
    // fetch() failed: the network or the server is down. Try again shortly.
    showError("Server tidak terjangkau; mencoba lagi…");
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => refreshTables().catch(reportError), 3000);
    return;
  }
  showError(error instanceof ApiError ? error.message : `Kesalahan: ${error.message || error}`);
}

const SIGN_IN_FIRST = "Masukkan token petugas lalu tekan Masuk untuk menampilkan kasus.";

function startLive() {
  const generation = ++state.generation;
  if (!state.token) {
    state.connection = "closed";
    renderConnection();
    showError(SIGN_IN_FIRST);
    return;
  }
  if (state.lastCursor) {
    subscribeLive(generation);
    return;
  }
  // A cursor before the first event: a connection that drops on a quiet night
  // resumes from it and receives every report made meanwhile.
  query(config, state.token, Q.EVENTS_CURSOR)
    .then((data) => {
      if (generation !== state.generation) return;
      state.lastCursor = state.lastCursor || data.caseEventsCursor;
      subscribeLive(generation);
    })
    .catch((error) => {
      if (error instanceof AccessDenied) {
        // As a refused socket is told: signing in again is the only way on.
        reportError(new ApiError(TOKEN_REFUSED));
        return;
      }
      reportError(error);
      if (generation === state.generation) setTimeout(() => startLive(), 3000);
    });
}

function subscribeLive(generation) {
  const client = liveClient(config, state.token, (connection) => {
    if (generation !== state.generation) return;
    state.connection = connection;
    if (connection === "connected") {
      state.connects += 1;
      if (state.connects > 1) scheduleRefresh(); // catch up the tables after a drop
    }
    renderConnection();
  });
  state.client = client;
  state.eventsPayload = {
    query: Q.CASE_EVENTS,
    variables: { filter: caseFilter(), after: state.lastCursor },
  };
  state.ready = false;
  state.buffered = [];
  state.subscriptions = [
    client.subscribe(state.eventsPayload, {
      next: (message) => {
        if (generation !== state.generation) return;
        if (message.errors?.length) return reportError(new ApiError(message.errors[0].message));
        const update = message.data.caseEvents;
        state.lastCursor = update.cursor;
        state.eventsPayload.variables.after = update.cursor;
        if (state.ready) applyEvent(update);
        else state.buffered.push(update);
      },
      error: (error) => reportError(error instanceof Error ? error : new ApiError(liveError(error))),
      complete: () => {},
    }),
    client.subscribe(
      { query: Q.OPEN_COUNTS, variables: { filter: caseFilter() } },
      {
        next: (message) => {
          if (generation !== state.generation) return;
          if (message.errors?.length) return reportError(new ApiError(message.errors[0].message));
          renderCounters(message.data.openCaseCounts);
        },
        error: (error) => reportError(error instanceof Error ? error : new ApiError(liveError(error))),
        complete: () => {},
      },
    ),
  ];
  // Subscribe first, then read the snapshot, then apply what arrived meanwhile:
  // nothing committed between the two is lost, and the newest state wins.
  snapshotThenLive(generation);
}

function snapshotThenLive(generation) {
  loadSnapshot()
    .then(() => {
      if (generation !== state.generation) return;
      state.ready = true;
      for (const update of state.buffered.splice(0)) applyEvent(update);
      showError("");
    })
    .catch((error) => {
      reportError(error);
      if (generation === state.generation) setTimeout(() => snapshotThenLive(generation), 3000);
    });
}

const TOKEN_REFUSED = "Token ditolak atau kedaluwarsa: masuk lagi dengan token petugas.";

function liveError(error) {
  if (Array.isArray(error)) return error.map((e) => e.message).join("; ");
  if (isRefusal(error)) return TOKEN_REFUSED;
  if (error && typeof error.code === "number") return `Koneksi langsung ditutup (${error.code}).`;
  return "Koneksi langsung gagal.";
}

function stopLive() {
  state.ready = false;
  for (const dispose of state.subscriptions) dispose();
  state.subscriptions = [];
  state.client?.dispose();
  state.client = null;
}

function restart({ keepCursor }) {
  stopLive();
  if (!keepCursor) {
    state.lastCursor = null;
    state.cases.clear();
    state.markers.clear();
    map.cases.clearLayers();
    state.newest = [];
    state.overdueTotal = 0;
    renderNewest();
    renderCounters({ total: 0, groups: [] });
    renderOverdue([]);
    $("#dinas-table tbody").replaceChildren();
  }
  startLive();
}

// -- filters and sign-in --------------------------------------------------------------

function fillSelect(select, allLabel, options) {
  select.replaceChildren(
    element("option", { value: "" }, allLabel),
    ...options.map(([value, label]) => element("option", { value }, label)),
  );
}

function wireControls(reference) {
  fillSelect(
    $("#filter-kecamatan"),
    "Semua kecamatan",
    reference.kecamatanList.map((k) => [k.code, k.name]),
  );
  fillSelect(
    $("#filter-dinas"),
    "Semua dinas",
    reference.dinasList.map((d) => [d.code, d.shortName]),
  );
  fillSelect(
    $("#filter-category"),
    "Semua kategori",
    reference.categories.map((c) => [c.code, c.serviceLevelDays ? `  ${c.name}` : c.name]),
  );
  const onChange = () => {
    state.filter = {
      kecamatanCodes: selected("#filter-kecamatan"),
      dinasCodes: selected("#filter-dinas"),
      categoryCodes: selected("#filter-category"),
    };
    highlightKecamatan();
    restart({ keepCursor: false });
  };
  for (const id of ["#filter-kecamatan", "#filter-dinas", "#filter-category"]) {
    $(id).addEventListener("change", onChange);
  }
  $("#signin").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token").value.trim();
    saveToken(state.token);
    renderSignIn();
    // Another token may see other cases: start over.
    restart({ keepCursor: false });
  });
  $("#signout-button").addEventListener("click", () => {
    state.token = "";
    $("#token").value = "";
    saveToken("");
    renderSignIn();
    restart({ keepCursor: false });
  });
}

function selected(id) {
  const value = $(id).value;
  return value ? [value] : [];
}

// -- start ---------------------------------------------------------------------------

async function start() {
  renderShell();
  tick();
  setInterval(tick, 1000);
  // Overdue is a matter of time: restyle markers as due times pass.
  setInterval(() => {
    for (const item of state.cases.values()) placeMarker(item);
  }, 60_000);
  let reference;
  for (;;) {
    try {
      reference = await query(config, state.token, Q.REFERENCE);
      break;
    } catch (error) {
      reportError(error);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
  setUpMap(reference.kelurahanList);
  wireControls(reference);
  startLive();
}

// For the operators' tooling and the browser tests: the live state, and a way to cut the
// websocket as a network drop would (the client then reconnects by itself).
window.poc = {
  get connection() {
    return state.connection;
  },
  get connects() {
    return state.connects;
  },
  get eventsSeen() {
    return state.eventsSeen;
  },
  get ready() {
    return state.ready;
  },
  dropConnection() {
    state.client?.terminate();
  },
};

start();
