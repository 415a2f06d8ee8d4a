// The event stream of hivectld (docs/events.md): Server-Sent Events read through fetch, reconnecting with
// ?since= the last sequence number seen, so a dropped connection loses no event.
//
// fetch rather than EventSource: EventSource cannot send an Authorization header, and a token in the URL
// would end up in logs and the browser's history. The frames are parsed as the HTML standard's "Server-sent
// events" section defines them (fields id, event, data; a blank line ends a frame; ":" starts a comment).

import { headers } from "./app-api.js";

const RETRY_FIRST = 500; // ms before the first reconnection; doubled up to RETRY_MAX
const RETRY_MAX = 10000;

/**
 * Follow /1.0/events from `since` on. `onEvent(event)` gets every event (and gap messages) in order;
 * `onState("live" | "reconnecting" | "refused", detail)` is told how the stream is. Returns an object
 * whose `stop()` ends it and whose `seq` is the last number seen.
 */
export function follow(since, onEvent, onState) {
  const state = { seq: since, stopped: false, paused: null, controller: null };
  let retry = RETRY_FIRST;

  async function once() {
    state.controller = new AbortController();
    const url = `/1.0/events?since=${encodeURIComponent(state.seq)}`;
    const reply = await fetch(url, {
      headers: headers({ Accept: "text/event-stream" }), signal: state.controller.signal, cache: "no-store",
    });
    if (reply.status === 401 || reply.status === 403) {
      let message = `HTTP ${reply.status}`;
      try { message = (await reply.json()).error || message; } catch { /* not JSON */ }
      const refused = new Error(message);
      refused.refused = true;
      throw refused;
    }
    if (!reply.ok || !reply.body) throw new Error(`HTTP ${reply.status}`);
    onState("live");
    retry = RETRY_FIRST;
    const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue; // a comment (keepalive) or a frame without data
        const message = JSON.parse(data.join("\n"));
        if (typeof message.seq === "number") {
          if (message.seq <= state.seq) continue; // already seen (a replay after reconnecting)
          state.seq = message.seq;
        }
        onEvent(message);
      }
    }
  }

  (async () => {
    while (!state.stopped) {
      if (state.paused) await state.paused.promise;
      try {
        await once();
      } catch (error) {
        if (state.stopped) return;
        if (error.refused) {
          onState("refused", error.message);
          return;
        }
      }
      if (state.stopped) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retry));
      retry = Math.min(retry * 2, RETRY_MAX);
    }
  })();

  return {
    get seq() { return state.seq; },
    stop() {
      state.stopped = true;
      if (state.controller) state.controller.abort();
    },
    /** Drop the connection and stay away until resume(), which reconnects with since: what a network
     *  outage does (tests/web/test_ui_browser.py changes guests meanwhile and counts what arrives). */
    pause() {
      let resolve;
      const promise = new Promise((r) => { resolve = r; });
      state.paused = { promise, resolve };
      if (state.controller) state.controller.abort();
    },
    resume() {
      const paused = state.paused;
      state.paused = null;
      if (paused) paused.resolve();
    },
  };
}
