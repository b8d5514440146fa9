// bench/sse: an event stream client for the benchmarks (node:http, many at once), the clocks
// the agents stamp their lines with, and timed status reads.
import fs from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";

// Clocks. hrtime is CLOCK_MONOTONIC on Linux (libuv); realtime with sub-ms precision is
// timeOrigin (realtime at start) + performance.now() (monotonic since then).
export const monoNs = () => process.hrtime.bigint();
export const realNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
export const nsToMs = (ns) => Number(ns) / 1e6;

// A line of scripts/benchmarks/agent: "bench <i> <monotonic ns> <realtime ns>".
export function parseBench(line) {
  const m = /^bench (\d+) (\d+) (\d+)$/.exec(line);
  return m ? { i: Number(m[1]), am: BigInt(m[2]), ar: BigInt(m[3]) } : null;
}

// sameClock: does the agent's "clock <realtime> <monotonic>" line show our CLOCK_MONOTONIC
// (no time namespace in the sandbox)? Both sides' realtime - monotonic then agree to a few us.
export function sameClock(line) {
  const m = /^clock (\d+) (\d+)$/.exec(line || "");
  if (!m) return false;
  const diffMs = nsToMs((realNs() - monoNs()) - (BigInt(m[1]) - BigInt(m[2])));
  return Math.abs(diffMs) < 2;
}

// openStream: GET the job's events; every complete event goes to onEvent(ev, arrivalMonoNs).
// ready resolves at the first event (or the end); done when the connection is over;
// complete: ended properly with the end event.
export function openStream(port, id, { agent, onEvent = () => {}, headers = {} } = {}) {
  const s = { status: 0, events: 0, comments: 0, sawEnd: false, complete: false, error: null, body: "" };
  let ready, done;
  s.ready = new Promise((r) => { ready = r; });
  s.done = new Promise((r) => { done = r; });
  let buf = "";
  s.req = http.get({ host: "127.0.0.1", port, path: `/api/jobs/${id}/events`, agent, headers }, (res) => {
    s.status = res.statusCode;
    res.setEncoding("utf8");
    if (res.statusCode !== 200) {
      res.on("data", (d) => { s.body += d; });
      res.on("close", () => { ready(); done(); });
      return;
    }
    res.on("data", (chunk) => {
      const t = monoNs();
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith(":")) { s.comments++; continue; }
        const ev = { event: "message", id: null, data: "" };
        for (const line of block.split("\n")) {
          const c = line.indexOf(":");
          const k = line.slice(0, c), v = line.slice(c + 2);
          if (k === "event") ev.event = v;
          else if (k === "id") ev.id = v;
          else if (k === "data") ev.data += v;
        }
        if (!ev.data) continue; /* retry: */
        s.events++;
        if (ev.event === "end") s.sawEnd = true;
        onEvent({ event: ev.event, id: ev.id, data: JSON.parse(ev.data) }, t);
        ready();
      }
    });
    res.on("end", () => { s.complete = res.complete && s.sawEnd; });
    res.on("close", () => { ready(); done(); });
    res.on("error", (e) => { s.error = e; });
  });
  s.req.on("error", (e) => { s.error = e; ready(); done(); });
  s.close = () => s.req.destroy();
  return s;
}

// timedGet: one GET with keep-alive; resolves {status, ms, body}.
export function timedGet(port, p, agent) {
  return new Promise((resolve, reject) => {
    const t0 = monoNs();
    const req = http.get({ host: "127.0.0.1", port, path: p, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode, ms: nsToMs(monoNs() - t0), body }));
    });
    req.on("error", reject);
  });
}

// tailFile: inotify on log.jsonl, every appended record stamped when its bytes are read.
export function tailFile(file, onRecord) {
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(1 << 20);
  let off = 0, rest = "";
  const pump = () => {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, off);
      if (n <= 0) return;
      const t = monoNs();
      off += n;
      rest += buf.toString("utf8", 0, n);
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        onRecord(JSON.parse(rest.slice(0, i)), t);
        rest = rest.slice(i + 1);
      }
    }
  };
  const w = fs.watch(file, { persistent: false }, pump);
  pump();
  return { stop: () => { w.close(); fs.closeSync(fd); } };
}
