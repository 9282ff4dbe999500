// The operators' dashboard: one project's device health, sync runs, open conflicts and a live
// feed of actions, through the gateway's own GraphQL API (queries over HTTP, subscriptions over
// graphql-transport-ws). Everything shown is inserted as text, never as HTML: names and record
// data come from devices.
//
// The token is kept in sessionStorage only (this tab, until it closes): never in localStorage,
// a cookie or the URL.

import { LiveClient, request } from "./graphql-ws.js";

const TOKEN_KEY = "sync-gateway-dashboard-token";
const FEED_MAX_USERS = 20; // "every device owner" subscribes to at most this many users
const FEED_LENGTH = 100; // actions kept on the page
const FEED_BATCH = 200; // maxCount of the feed's subscriptions
const REFRESH_MS = 30000; // re-read what has no subscription of its own (and the lag)
const TICK_MS = 10000; // re-render the relative times
const THROTTLE_MS = 1000; // re-read what moves with the live events at most this often

const endpoint = new URL("graphql", location.href);
endpoint.search = "";
endpoint.hash = "";
const wsEndpoint = new URL(endpoint);
wsEndpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

const DEVICE_FIELDS = `deviceId deviceNames deviceType version owner status pendingUp pendingDown
  firstSeen lastSeen lastSync`;
const RUN_FIELDS = `id syncId status currentStep recordsProcessed sourceRecordCount createdAt
  updatedAt completedAt errorCode errorMessage`;

const START = `query DashboardStart { me { id role } projects { code name } }`;
const OVERVIEW = `query DashboardOverview($project: String!) {
  devices(project: $project) { ${DEVICE_FIELDS} }
  syncs(project: $project) { id name }
  failed: projectSyncRuns(project: $project, status: FAILED, perPage: 10) {
    pagination { totalRecords } data { ${RUN_FIELDS} }
  }
  conflicts(project: $project, status: OPEN, first: 20) {
    edges { node { id table recordId key user type devices detectedAt } }
    pageInfo { hasNextPage }
  }
}`;
const DEVICE_HEALTH = `subscription DashboardDevices($project: String!) {
  deviceStatusChanged(project: $project) { ${DEVICE_FIELDS} }
}`;
const RUNS = `subscription DashboardRuns($project: String!) {
  syncRunUpdated(project: $project) { ${RUN_FIELDS} }
}`;
// snapshot: false: the user's actions as they were written (a snapshot would turn the current
// records into INSERTs); resumed from the latest progress after a reconnect.
const ACTIONS = `subscription DashboardActions($project: String!, $user: String!,
    $progress: [ProgressInput!], $maxCount: Int!) {
  databaseActions(project: $project, user: $user, progress: $progress, maxCount: $maxCount,
      snapshot: false) {
    actions { table user action recordId jsonData time deviceId position }
    progress { table cursor }
    hasMore
  }
}`;

const $ = (selector) => document.querySelector(selector);

let session = null; // the signed-in state; replaced on every sign-in

// Sign-in

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showSignIn(error) {
  if (session) session.close();
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("#panels").hidden = true;
  $("#project-form").hidden = true;
  $("#forget").hidden = true;
  $("#who").textContent = "";
  setConnection("idle", "not connected");
  showMessage(null);
  $("#sign-in").hidden = false;
  const problem = $("#sign-in-error");
  problem.textContent = error || "";
  problem.hidden = !error;
  $("#token").focus();
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = $("#token");
  const token = field.value.trim().replace(/^Bearer\s+/i, "");
  field.value = "";
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  signIn(token);
});

$("#forget").addEventListener("click", () => showSignIn(null));

async function signIn(token) {
  $("#sign-in").hidden = true;
  if (session) session.close();
  session = new Session(token);
  await session.start();
}

// What the page shows

function setConnection(state, text) {
  const badge = $("#connection");
  badge.dataset.state = state;
  badge.textContent = text;
}

function showMessage(text) {
  const message = $("#message");
  message.textContent = text || "";
  message.hidden = !text;
}

function errorText(errors) {
  return errors.map((e) => e.message).join("; ");
}

function isAuthError(errors) {
  return errors.some((e) => {
    const code = e.extensions && e.extensions.code;
    return code === "UNAUTHENTICATED" || (code === "CLOSED" && e.extensions.closeCode === 4403);
  });
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

function when(iso) {
  return iso ? `${ago(iso)}${ago(iso) === "just now" ? "" : " ago"}` : "never";
}

function clock(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleDateString();
}

function cell(text, className, title) {
  const td = document.createElement("td");
  td.textContent = text == null ? "–" : String(text);
  if (className) td.className = className;
  if (title) td.title = title;
  return td;
}

function badge(value) {
  const td = document.createElement("td");
  const span = document.createElement("span");
  span.className = `badge ${value}`;
  span.textContent = value.replaceAll("_", " ").toLowerCase();
  td.append(span);
  return td;
}

function fillTable(table, rows) {
  const body = $(`${table} tbody`);
  body.replaceChildren(...rows);
  const empty = $(table).nextElementSibling;
  if (empty && empty.classList.contains("empty")) empty.hidden = rows.length > 0;
}

/** fn, called at most once per THROTTLE_MS however often this is called (never delayed
 * further by later calls: a busy project still gets its refreshes). */
function throttle(fn) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, THROTTLE_MS);
  };
}

// One signed-in token: its live connection, the chosen project and what is known of it.

class Session {
  constructor(token) {
    this.token = token;
    this.closed = false;
    this.live = new LiveClient(
      wsEndpoint.href,
      () => ({ Authorization: `Bearer ${this.token}` }),
      (state, detail) => this.connectionState(state, detail),
    );
    this.timers = [
      setInterval(() => this.refresh(), REFRESH_MS),
      setInterval(() => this.render(), TICK_MS),
    ];
    this.refreshSoon = throttle(() => this.refresh());
    this.project = null;
  }

  close() {
    this.closed = true;
    this.timers.forEach(clearInterval);
    this.live.close();
  }

  connectionState(state, detail) {
    const text = { connecting: "connecting…", live: "live", retrying: "reconnecting…" }[state];
    setConnection(state, text || `disconnected: ${detail}`);
    if (state === "retrying" && detail) $("#connection").title = detail;
  }

  async query(query, variables) {
    let result;
    try {
      result = await request(endpoint.href, this.token, query, variables);
    } catch (error) {
      showMessage(`The gateway cannot be reached: ${error}`);
      return null;
    }
    if (this.closed) return null;
    if (isAuthError(result.errors)) {
      showSignIn(`The gateway refused the token: ${errorText(result.errors)}`);
      return null;
    }
    if (result.errors.length) showMessage(errorText(result.errors));
    return result.data;
  }

  async start() {
    const data = await this.query(START);
    if (!data) return;
    $("#who").textContent = `${data.me.id} (${data.me.role.toLowerCase()})`;
    $("#forget").hidden = false;
    const select = $("#project");
    select.replaceChildren(
      ...data.projects.map((p) => {
        const option = document.createElement("option");
        option.value = p.code;
        option.textContent = `${p.code}: ${p.name}`;
        return option;
      }),
    );
    if (data.projects.length === 0) {
      showMessage("There is no project you may see.");
      return;
    }
    const wanted = new URLSearchParams(location.search).get("project");
    const codes = data.projects.map((p) => p.code);
    select.value = codes.includes(wanted) ? wanted : codes[0];
    select.onchange = () => this.open(select.value);
    $("#feed-user").onchange = () => this.followFeed();
    $("#project-form").hidden = false;
    await this.open(select.value);
  }

  // A project

  async open(code) {
    if (this.project) {
      this.project.stops.forEach((stop) => stop());
      this.project.feeds.forEach((feed) => feed.stop());
    }
    const url = new URL(location.href);
    url.searchParams.set("project", code);
    history.replaceState(null, "", url);
    this.project = {
      code,
      devices: new Map(), // owner + deviceId -> device
      changed: new Set(), // keys of rows to flash at the next render
      syncs: new Map(), // id -> name
      running: new Map(), // id -> run
      failed: [],
      failedTotal: 0,
      conflicts: [],
      moreConflicts: false,
      feeds: new Map(), // user -> {stop, progress: Map(table -> cursor)}
      stops: [],
    };
    showMessage(null);
    $("#feed").replaceChildren();
    $("#feed-user").replaceChildren();
    $("#panels").hidden = false;
    this.render();
    await this.refresh();
    const project = this.project;
    if (project.code !== code || this.closed) return;
    project.stops.push(
      this.live.subscribe(() => ({ query: DEVICE_HEALTH, variables: { project: code } }), {
        next: (data) => this.deviceChanged(project, data.deviceStatusChanged),
        error: (errors) => this.liveError("device health", errors),
      }),
      this.live.subscribe(
        () => {
          // Sent again after a reconnect: it starts over with the runs at work, and a run that
          // ended meanwhile is known only from the queries.
          project.running.clear();
          if (project.stops.length) this.refreshSoon();
          return { query: RUNS, variables: { project: code } };
        },
        {
          next: (data) => this.runChanged(project, data.syncRunUpdated),
          error: (errors) => this.liveError("sync runs", errors),
        },
      ),
    );
    this.followFeed();
  }

  async refresh() {
    const project = this.project;
    if (!project) return;
    const data = await this.query(OVERVIEW, { project: project.code });
    if (!data || project !== this.project) return;
    const before = project.devices;
    project.devices = new Map();
    for (const device of data.devices) {
      const key = `${device.owner}\u0000${device.deviceId}`;
      const old = before.get(key);
      if (old && JSON.stringify(old) !== JSON.stringify(device)) project.changed.add(key);
      project.devices.set(key, device);
    }
    project.syncs = new Map(data.syncs.map((s) => [s.id, s.name]));
    project.failed = data.failed.data;
    project.failedTotal = data.failed.pagination.totalRecords;
    project.conflicts = data.conflicts.edges.map((e) => e.node);
    project.moreConflicts = data.conflicts.pageInfo.hasNextPage;
    this.render();
    this.updateFeedChoices();
  }

  deviceChanged(project, device) {
    if (project !== this.project) return;
    const key = `${device.owner}\u0000${device.deviceId}`;
    project.devices.set(key, device);
    project.changed.add(key);
    this.render();
    this.updateFeedChoices();
  }

  runChanged(project, run) {
    if (project !== this.project) return;
    if (run.status === "QUEUED" || run.status === "WORKING") {
      project.running.set(run.id, run);
    } else {
      project.running.delete(run.id);
      if (run.status === "FAILED" && !project.failed.some((r) => r.id === run.id)) {
        project.failed.unshift(run);
        project.failedTotal += 1;
      }
    }
    if (!project.syncs.has(run.syncId)) this.refreshSoon(); // a sync created since
    this.render();
  }

  liveError(what, errors) {
    if (isAuthError(errors)) {
      showSignIn(`The gateway refused the token: ${errorText(errors)}`);
    } else {
      showMessage(`The live ${what} stopped: ${errorText(errors)}`);
    }
  }

  // The feed of actions: one databaseActions subscription per user followed.

  updateFeedChoices() {
    const project = this.project;
    const select = $("#feed-user");
    const owners = [...new Set([...project.devices.values()].map((d) => d.owner))].sort();
    const choices = ["*", ...owners];
    const shown = [...select.options].map((o) => o.value);
    if (JSON.stringify(shown) !== JSON.stringify(choices)) {
      const current = select.value || "*";
      select.replaceChildren(
        ...choices.map((value) => {
          const option = document.createElement("option");
          option.value = value;
          option.textContent = value === "*" ? "every device owner" : value;
          return option;
        }),
      );
      select.value = choices.includes(current) ? current : "*";
    }
    this.followFeed();
  }

  /** Subscribes to the users the feed follows now, and stops following the others. */
  followFeed() {
    const project = this.project;
    const choice = $("#feed-user").value || "*";
    const owners = [...new Set([...project.devices.values()].map((d) => d.owner))].sort();
    const users = choice === "*" ? owners.slice(0, FEED_MAX_USERS) : [choice];
    $("#feed-note").textContent =
      choice === "*" && owners.length > FEED_MAX_USERS
        ? `(the first ${FEED_MAX_USERS} of ${owners.length} users: choose one to see others)`
        : "";
    for (const [user, feed] of project.feeds) {
      if (!users.includes(user)) {
        feed.stop();
        project.feeds.delete(user);
        for (const item of [...$("#feed").children]) {
          if (item.dataset.user === user) item.remove();
        }
      }
    }
    for (const user of users) {
      if (project.feeds.has(user)) continue;
      const feed = { progress: new Map(), started: Date.now(), caughtUp: false };
      feed.stop = this.live.subscribe(
        () => ({
          query: ACTIONS,
          variables: {
            project: project.code,
            user,
            maxCount: FEED_BATCH,
            progress: feed.progress.size
              ? [...feed.progress].map(([table, cursor]) => ({ table, cursor }))
              : null,
          },
        }),
        {
          next: (data) => this.actionsArrived(project, feed, data.databaseActions),
          error: (errors) => this.liveError(`actions of ${user}`, errors),
        },
      );
      project.feeds.set(user, feed);
    }
    this.renderFeedEmpty();
  }

  actionsArrived(project, feed, batch) {
    if (project !== this.project) return;
    for (const p of batch.progress) feed.progress.set(p.table, p.cursor);
    const list = $("#feed");
    // The backlog comes first, until a batch that was not full; what comes later is live
    // (as is everything after the first seconds: a user without history sends no backlog).
    const live = feed.caughtUp || Date.now() - feed.started > 2000;
    if (!batch.hasMore) feed.caughtUp = true;
    for (const action of batch.actions) {
      list.prepend(feedItem(action, live));
    }
    while (list.children.length > FEED_LENGTH) list.lastElementChild.remove();
    this.renderFeedEmpty();
    this.refreshSoon(); // what is pending, and conflicts, move with every write
  }

  renderFeedEmpty() {
    $("#feed-panel .empty").hidden = $("#feed").children.length > 0;
  }

  // Rendering from the state

  render() {
    const project = this.project;
    if (!project) return;
    const devices = [...project.devices.values()].sort(
      (a, b) => a.owner.localeCompare(b.owner) || a.deviceId.localeCompare(b.deviceId),
    );
    fillTable(
      "#devices",
      devices.map((d) => {
        const key = `${d.owner}\u0000${d.deviceId}`;
        const row = document.createElement("tr");
        row.dataset.deviceId = d.deviceId;
        row.dataset.owner = d.owner;
        row.append(
          deviceCell(d),
          cell(d.owner),
          badge(d.status),
          cell(d.pendingUp, "num pending-up"),
          cell(d.pendingDown, "num pending-down"),
          cell(when(d.lastSeen), "last-seen", d.lastSeen),
          cell(ago(d.lastSync), "lag", d.lastSync),
        );
        if (project.changed.has(key)) row.className = "changed";
        return row;
      }),
    );
    project.changed.clear();
    const counts = {};
    for (const d of devices) counts[d.status] = (counts[d.status] || 0) + 1;
    $("#device-counts").textContent = Object.entries(counts)
      .map(([status, n]) => `${n} ${status.replaceAll("_", " ").toLowerCase()}`)
      .join(" · ");

    const syncName = (id) => project.syncs.get(id) || `#${id}`;
    const running = [...project.running.values()].sort((a, b) => b.id - a.id);
    fillTable(
      "#running-runs",
      running.map((r) => {
        const row = document.createElement("tr");
        row.dataset.runId = r.id;
        row.append(
          cell(`#${r.id}`),
          cell(syncName(r.syncId)),
          badge(r.status),
          cell(r.currentStep),
          cell(`${r.recordsProcessed} / ${r.sourceRecordCount}`, "num"),
          cell(when(r.createdAt), null, r.createdAt),
        );
        return row;
      }),
    );
    fillTable(
      "#failed-runs",
      project.failed.map((r) => {
        const row = document.createElement("tr");
        row.dataset.runId = r.id;
        const error = [r.errorCode, r.errorMessage].filter(Boolean).join(": ");
        row.append(
          cell(`#${r.id}`),
          cell(syncName(r.syncId)),
          cell(error, "wrap"),
          cell(when(r.completedAt || r.updatedAt), null, r.completedAt || r.updatedAt),
        );
        return row;
      }),
    );
    fillTable(
      "#conflicts",
      project.conflicts.map((c) => {
        const row = document.createElement("tr");
        row.dataset.conflictId = c.id;
        row.append(
          cell(c.table),
          cell(short(c.key), null, `record ${c.recordId}`),
          cell(c.user),
          cell(c.type.replaceAll("_", " ").toLowerCase()),
          cell(c.devices.join(" vs "), "wrap"),
          cell(when(c.detectedAt), null, c.detectedAt),
        );
        return row;
      }),
    );
    $("#conflict-count").textContent = project.conflicts.length
      ? `${project.conflicts.length}${project.moreConflicts ? "+" : ""}`
      : "";
  }
}

/** The device's id, with its latest name (when it has another), type and version below. */
function deviceCell(d) {
  const td = cell(d.deviceId, "device");
  const names = d.deviceNames.filter((n) => n !== d.deviceId);
  const about = [names[names.length - 1], [d.deviceType, d.version].filter(Boolean).join(" ")]
    .filter(Boolean)
    .join(" · ");
  if (about) {
    const small = document.createElement("small");
    small.textContent = about;
    td.append(small);
  }
  if (names.length > 1) td.title = `also known as ${names.slice(0, -1).join(", ")}`;
  return td;
}

/** A long key or record id, by its end (ids with leading zeros differ there). */
function short(text) {
  return text.length > 14 ? `…${text.slice(-12)}` : text;
}

function feedItem(action, live) {
  const item = document.createElement("li");
  item.dataset.user = action.user;
  item.dataset.recordId = action.recordId;
  if (live) item.className = "live";
  const part = (text, className) => {
    const span = document.createElement("span");
    span.textContent = text == null ? "–" : String(text);
    if (className) span.className = className;
    return span;
  };
  item.append(
    part(clock(action.time), "time"),
    part(action.action, `kind ${action.action}`),
    part(action.table, "table"),
    part(action.user, "user"),
    part(action.deviceId, "device"),
    part(action.jsonData ?? `record ${action.recordId}`, "data"),
  );
  item.title = `record ${action.recordId}, log position ${action.position}`;
  return item;
}

// Start: with the tab's token when it has one.
const token = storedToken();
if (token) signIn(token);
else showSignIn(null);
