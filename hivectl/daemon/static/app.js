// hivectl's web UI (docs/web-ui.md): the guest list with live state, the guests' actions, create from a
// template, snapshots. Plain ES modules, no framework and no build step; every element is built with
// textContent (no HTML parsing of text), so no name or message from the API can become markup.
//
// What a button does is what the CLI does: each one calls the /1.0 endpoint of one catalog operation
// (docs/api.md), follows its background operation to the end, and shows the CLI's one-line error when it
// fails. Buttons are shown only when GET /1.0/whoami says the caller holds the role the operation needs.

import { ApiError, Rights, call, get, run, setToken, token } from "./app-api.js";
import { follow } from "./app-events.js";

const $ = (id) => document.getElementById(id);
const GUEST_ACTIONS = [ // [operation, label, shown while the guest is...]
  ["start", "Start", "stopped"], ["stop", "Stop", "running"], ["restart", "Restart", "running"],
  ["poweroff", "Power off", "running"],
];
const MAX_MESSAGES = 30;

const ui = { rights: null, guests: new Map(), stream: null, refreshTimer: null, opMessages: new Map(),
  snapshotGuest: null, firstSeq: 0, seqs: [] }; // firstSeq, seqs: where the stream began, what it brought

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

// -- messages ---------------------------------------------------------------------------------------------

/** A line in the messages list; returns a function that replaces its text (and marks it an error). */
function message(text, kind = "info") {
  const item = el("li", { class: kind }, text);
  if (kind === "error") item.setAttribute("role", "alert");
  const list = $("messages");
  list.prepend(item);
  while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
  return (next, nextKind = kind) => {
    item.textContent = next;
    item.className = nextKind;
    if (nextKind === "error") item.setAttribute("role", "alert");
  };
}

/**
 * Run `work` as the operation `label`, showing its progress and its outcome in one message line.
 *
 * The outcome comes from the operation's wait; its progress from the event stream, which may lag the wait
 * (on a loaded host the stream brings an operation's "running" event after the wait has answered it
 * failed). So the line stops taking progress the moment the outcome is shown: a late event must not turn
 * "start x failed: ..." back into "start x: running".
 */
async function perform(label, work) {
  const update = message(`${label}: …`);
  let opId = null;
  try {
    const result = await work((info) => {
      opId = info.id;
      ui.opMessages.set(info.id, { label, update });
    });
    update(`${label}: done`, "ok");
    return result;
  } catch (error) {
    update(`${label} failed: ${error.message}`, "error");
    return undefined;
  } finally {
    if (opId !== null) ui.opMessages.delete(opId); // the outcome is final: later progress events are ignored
  }
}

// -- the guest list ---------------------------------------------------------------------------------------

function isRunning(state) {
  return /^running/i.test(state);
}

function guestAction(name, op, labelText) {
  return el("button", {
    type: "button", dataset: { op, guest: name }, "aria-label": `${labelText} ${name}`,
    onclick: () => perform(`${op} ${name}`, (started) => run("POST", `/1.0/guests/${encodeURIComponent(name)}/${op}`,
      { body: {}, onStarted: started })),
  }, labelText);
}

function actionsOf(row) {
  const name = row.name;
  const cell = el("td", { class: "actions" });
  const running = isRunning(row.state);
  for (const [op, labelText, when] of GUEST_ACTIONS) {
    if (!ui.rights.may(op, name)) continue;
    const button = guestAction(name, op, labelText);
    button.disabled = when === "running" ? !running : running;
    cell.append(button);
  }
  cell.append(el("button", { type: "button", dataset: { guest: name, view: "snapshots" },
    "aria-label": `Snapshots of ${name}`, onclick: () => openSnapshots(name) }, "Snapshots"));
  if (ui.rights.may("console", name)) {
    const query = (type) => `console.html?guest=${encodeURIComponent(name)}&type=${type}`;
    cell.append(el("a", { href: query("serial"), target: "_blank", rel: "noopener", dataset: { op: "console" },
      "aria-label": `Serial console of ${name}` }, "Serial"));
    if (row.vnc) {
      cell.append(el("a", { href: query("vnc"), target: "_blank", rel: "noopener", dataset: { op: "console" },
        "aria-label": `Graphical console of ${name}` }, "VNC"));
    }
  }
  return cell;
}

function rowOf(guest) {
  const tr = el("tr", { dataset: { guest: guest.name } },
    el("th", { scope: "row" }, guest.name),
    el("td", { class: "state", dataset: { state: guest.state } }, guest.state),
    el("td", {}, String(guest.cpu)), el("td", {}, String(guest.memory)),
    el("td", {}, String(guest.datastore)), el("td", {}, String(guest.loader)));
  tr.append(actionsOf(guest));
  return tr;
}

function render(rows) {
  const body = $("guests").tBodies[0];
  const seen = new Set();
  for (const guest of rows) {
    seen.add(guest.name);
    const key = JSON.stringify(guest);
    const old = body.querySelector(`tr[data-guest="${CSS.escape(guest.name)}"]`);
    if (old && ui.guests.get(guest.name) === key) continue;
    const fresh = rowOf(guest);
    if (old) old.replaceWith(fresh);
    else body.append(fresh);
    ui.guests.set(guest.name, key);
  }
  for (const tr of [...body.rows]) {
    if (!seen.has(tr.dataset.guest)) {
      ui.guests.delete(tr.dataset.guest);
      tr.remove();
    }
  }
  // Keep the rows in the list's order (the API's, as hivectl list).
  rows.forEach((guest, index) => {
    const tr = body.querySelector(`tr[data-guest="${CSS.escape(guest.name)}"]`);
    if (body.rows[index] !== tr) body.insertBefore(tr, body.rows[index] || null);
  });
  $("empty").hidden = rows.length > 0;
}

async function refresh() {
  try {
    const rows = await get("/1.0/guests");
    const unknown = rows.map((g) => `/guests/${g.name}`).filter((p) => !(p in ui.rights.roles));
    if (unknown.length) Object.assign(ui.rights.roles, (await get("/1.0/whoami", { path: unknown })).roles);
    render(rows);
  } catch (error) {
    message(`list failed: ${error.message}`, "error");
  }
}

/** A refresh soon, and one more after the daemon's list cache (at most 1 s, docs/api.md) has turned. */
function refreshSoon() {
  clearTimeout(ui.refreshTimer);
  ui.refreshTimer = setTimeout(() => {
    refresh();
    ui.refreshTimer = setTimeout(refresh, 1100);
  }, 50);
}

// -- events -----------------------------------------------------------------------------------------------

function onEvent(event) {
  if (typeof event.seq === "number" && ui.seqs.length < 10000) ui.seqs.push(event.seq);
  if (event.type === "gap") {
    message(`events ${event.details.first} to ${event.details.last} are no longer kept: list reloaded`, "info");
    refreshSoon();
    return;
  }
  if (event.type === "operation") {
    const shown = ui.opMessages.get(event.details.id);
    if (shown && !["Success", "Failure", "Cancelled"].includes(event.details.status)) {
      const doing = event.details.command ? `, ${event.details.command.split(" ")[0]}` : "";
      shown.update(`${shown.label}: ${event.details.status.toLowerCase()} (${event.details.steps} steps${doing})`);
    }
    if (event.details.status === "Success" || event.details.status === "Failure") refreshSoon();
    return;
  }
  if (typeof event.target === "string" && event.target.startsWith("/guests/")) {
    refreshSoon();
    const name = event.target.slice("/guests/".length);
    if (event.type === "snapshot" && ui.snapshotGuest === name) loadSnapshots(name);
  }
}

function onStreamState(state, detail) {
  const live = $("live");
  live.dataset.state = state;
  live.textContent = { live: "live", reconnecting: "reconnecting…", refused: `events refused: ${detail}` }[state];
  if (state === "live") refreshSoon(); // what changed while the stream was down is in its replay, and the list
}

// -- create -----------------------------------------------------------------------------------------------

function createBody() {
  const form = $("create-form");
  const body = { name: form.name.value.trim(), template: form.template.value };
  if (form.size.value.trim()) body.size = form.size.value.trim();
  return body;
}

async function previewCreate() {
  const plan = $("create-plan");
  const form = $("create-form");
  if (!form.reportValidity()) return;
  try {
    const argvs = await run("POST", "/1.0/guests", { body: createBody(), query: { dry_run: 1 } });
    plan.textContent = argvs.map((argv) => argv.join(" ")).join("\n") || "(nothing to do)";
    plan.hidden = false;
  } catch (error) {
    plan.hidden = true;
    message(`create ${createBody().name} (preview) failed: ${error.message}`, "error");
  }
}

async function submitCreate(event) {
  event.preventDefault();
  const body = createBody();
  const done = await perform(`create ${body.name}`, (started) => run("POST", "/1.0/guests", { body, onStarted: started }));
  if (done !== undefined) {
    $("create-form").name.value = "";
    $("create-plan").hidden = true;
    refreshSoon();
  }
}

// -- snapshots --------------------------------------------------------------------------------------------

function confirmThen(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function loadSnapshots(name) {
  const body = $("snapshot-table").tBodies[0];
  const note = $("snapshot-note");
  body.replaceChildren();
  note.textContent = "";
  let snaps;
  try {
    snaps = await get(`/1.0/guests/${encodeURIComponent(name)}/snapshots`);
  } catch (error) {
    note.textContent = error.message;
    return;
  }
  if (!snaps.length) note.textContent = `${name} has no snapshots.`;
  for (const snap of snaps) {
    const spec = `${name}@${snap.name}`;
    const cell = el("td", { class: "actions" });
    if (ui.rights.may("rollback", name)) {
      cell.append(el("button", { type: "button", dataset: { op: "rollback", snapshot: snap.name },
        "aria-label": `Roll ${name} back to ${snap.name}`, onclick: async () => {
          if (!await confirmThen(`Roll ${name} back to ${snap.name}? Changes made since are lost.`)) return;
          await perform(`rollback ${spec}`, (started) => run("POST", `/1.0/guests/${encodeURIComponent(spec)}/rollback`,
            { body: {}, onStarted: started }));
          loadSnapshots(name);
        } }, "Roll back"));
    }
    if (ui.rights.may("destroy", name)) {
      cell.append(el("button", { type: "button", class: "danger", dataset: { op: "destroy", snapshot: snap.name },
        "aria-label": `Delete snapshot ${snap.name} of ${name}`, onclick: async () => {
          if (!await confirmThen(`Delete snapshot ${spec}? It cannot be undone.`)) return;
          await perform(`destroy ${spec}`, () => run("DELETE", `/1.0/guests/${encodeURIComponent(spec)}`));
          loadSnapshots(name);
        } }, "Delete"));
    }
    body.append(el("tr", { dataset: { snapshot: snap.name } }, el("th", { scope: "row" }, snap.name),
      el("td", {}, String(snap.creation)), el("td", {}, formatBytes(snap.used)), cell));
  }
}

function formatBytes(n) {
  const units = ["B", "K", "M", "G", "T"];
  let value = Number(n) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value}${units[unit]}`;
}

function openSnapshots(name) {
  ui.snapshotGuest = name;
  $("snapshots-title").textContent = `Snapshots of ${name}`;
  $("snapshot-form").hidden = !ui.rights.may("snapshot", name);
  $("snapshot-form").reset();
  loadSnapshots(name);
  $("snapshots").showModal();
}

async function takeSnapshot(event) {
  event.preventDefault();
  const name = ui.snapshotGuest;
  const form = $("snapshot-form");
  const snap = form.snap.value.trim();
  const spec = snap ? `${name}@${snap}` : name;
  await perform(`snapshot ${spec}`, () => run("POST", `/1.0/guests/${encodeURIComponent(spec)}/snapshot`,
    { body: { force: form.force.checked } }));
  form.snap.value = "";
  loadSnapshots(name);
}

// -- start ------------------------------------------------------------------------------------------------

async function loadTemplates() {
  const select = $("create-template");
  select.replaceChildren();
  for (const name of await get("/1.0/templates")) {
    select.append(el("option", { value: name, selected: name === "default" }, name));
  }
}

function showLogin(error = "") {
  $("login").hidden = false;
  $("guests-section").hidden = true;
  $("create-section").hidden = true;
  $("login-error").textContent = error;
  $("live").textContent = "not logged in";
  $("token").focus();
}

async function start() {
  let whoami;
  try {
    whoami = await get("/1.0/whoami");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin(token() ? error.message : "");
      return;
    }
    $("live").textContent = error.message;
    return;
  }
  ui.rights = new Rights(whoami);
  $("login").hidden = true;
  const p = whoami.principal;
  $("who").textContent = p.name ? `${p.name}${p.token_id ? ` (token ${p.token_id})` : ""}` : `uid ${p.uid}`;
  $("who").hidden = false;
  $("logout").hidden = !token();
  $("guests-section").hidden = false;
  const mayCreate = ui.rights.may("create");
  $("create-section").hidden = !mayCreate;
  if (mayCreate) loadTemplates().catch((error) => message(`templates: ${error.message}`, "error"));
  await refresh();
  if (ui.stream) ui.stream.stop();
  ui.firstSeq = whoami.events_seq;
  ui.seqs = [];
  ui.stream = follow(whoami.events_seq, onEvent, onStreamState);
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("token").value.trim());
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => {
    setToken("");
    if (ui.stream) ui.stream.stop();
    location.reload();
  });
  $("create-form").addEventListener("submit", submitCreate);
  $("create-preview").addEventListener("click", previewCreate);
  $("snapshot-form").addEventListener("submit", takeSnapshot);
  $("snapshots").addEventListener("close", () => { ui.snapshotGuest = null; });
  window.hivectlUi = ui; // for the browser tests (tests/web): the events seen, the stream's pause()/resume()
}

wire();
start();
