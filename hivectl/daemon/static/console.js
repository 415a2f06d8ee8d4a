// The console page: console.html?guest=NAME&type=serial|vnc (docs/api.md, "The consoles").
//
// It asks the daemon for a single-use ticket (POST /1.0/guests/NAME/console?type=..., with the bearer
// token the web UI keeps in sessionStorage["hivectl.token"]), then opens the console websocket with the
// ticket in its subprotocol list and hands it to xterm.js (serial) or noVNC (vnc). While the guest is not
// running yet (409) it asks again every second, so the page can be opened before the guest starts.
// window.hivectlConsole exposes the terminal, the RFB client and the state to the tests.

const TOKEN_KEY = "hivectl.token";
const RETRY_MS = 1000;

const params = new URLSearchParams(location.search);
const guest = params.get("guest") || "";
const type = params.get("type") === "vnc" ? "vnc" : "serial";
const statusLine = document.getElementById("status");
const screen = document.getElementById("screen");
const reconnect = document.getElementById("reconnect");
const login = document.getElementById("login");
const state = { phase: "loading", error: "", opened: 0, closed: 0 };
window.hivectlConsole = { state, term: null, rfb: null, socket: null };

function show(text, phase, error = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", error);
  state.phase = phase;
  if (error) state.error = text;
}

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// A ticket, or null after showing why there is none (retrying by itself while the guest is not running).
async function ticket() {
  const url = `/1.0/guests/${encodeURIComponent(guest)}/console?type=${type}`;
  let reply;
  try {
    reply = await fetch(url, { method: "POST", headers: headers(), cache: "no-store" });
  } catch (error) {
    show(`cannot reach hivectld: ${error}`, "error", true);
    return null;
  }
  const body = await reply.json().catch(() => ({}));
  if (reply.ok) return body.metadata;
  if (reply.status === 409) {
    show(`${body.error || "not running"}: waiting for it to start…`, "waiting");
    setTimeout(connect, RETRY_MS);
    return null;
  }
  show(body.error || `HTTP ${reply.status}`, "error", true);
  if (reply.status === 401) login.hidden = false;  // no token yet (or a stale one): ask for one
  return null;
}

function socketFor(info) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${info.websocket}`, info.subprotocols);
  socket.binaryType = "arraybuffer";
  window.hivectlConsole.socket = socket;
  socket.addEventListener("open", () => { state.opened += 1; });
  socket.addEventListener("close", (event) => {
    state.closed += 1;
    const why = event.reason || (event.code === 1006 ? "refused or lost" : `code ${event.code}`);
    show(`disconnected (${why})`, "closed", event.code !== 1000);
    reconnect.hidden = false;
  });
  return socket;
}

let terminal = null;

async function openSerial(info) {
  const { Terminal } = await import("./vendor/xterm/xterm.mjs");
  const { FitAddon } = await import("./vendor/xterm/addon-fit.mjs");
  if (!terminal) {
    terminal = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(screen);
    fit.fit();
    window.addEventListener("resize", () => fit.fit());
    window.hivectlConsole.term = terminal;
  }
  const socket = socketFor(info);
  const encoder = new TextEncoder();
  const input = terminal.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  const binary = terminal.onBinary((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
  });
  socket.addEventListener("open", () => { show(`${guest}: serial console`, "open"); terminal.focus(); });
  socket.addEventListener("message", (event) => terminal.write(new Uint8Array(event.data)));
  socket.addEventListener("close", () => { input.dispose(); binary.dispose(); });
}

async function openVnc(info) {
  const { default: RFB } = await import("./vendor/novnc/core/rfb.js");
  screen.classList.add("vnc");
  screen.replaceChildren();
  const rfb = new RFB(screen, socketFor(info), { shared: true });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => show(`${guest}: graphical console`, "open"));
  rfb.addEventListener("credentialsrequired", () => {
    const password = prompt(`VNC password of ${guest}`);  // the guest's vnc_password, never stored
    rfb.sendCredentials({ password: password || "" });
  });
  rfb.addEventListener("securityfailure", (event) => show(`VNC: ${event.detail.reason || "refused"}`, "error", true));
  window.hivectlConsole.rfb = rfb;
}

async function connect() {
  reconnect.hidden = true;
  const info = await ticket();
  if (!info) return;
  show(`${guest}: connecting…`, "connecting");
  try {
    await (type === "vnc" ? openVnc(info) : openSerial(info));
  } catch (error) {
    show(`the ${type === "vnc" ? "noVNC" : "xterm.js"} files are missing (run scripts/build-web): ${error}`,
         "error", true);
  }
}

document.title = `${guest} ${type} console`;
document.getElementById("title").textContent = `${guest} (${type})`;
reconnect.addEventListener("click", connect);
// The web UI's login keeps the token in sessionStorage; opened on its own, the page asks for one.
login.addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, field.value.trim());
  field.value = "";
  login.hidden = true;
  connect();
});
if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(guest)) {
  show("no guest given: open console.html?guest=NAME&type=serial|vnc", "error", true);
} else {
  connect();
}
