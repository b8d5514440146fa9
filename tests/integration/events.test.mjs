// events: Server-Sent Events of docs/api.md: order, ids, resume (middle, after the end, across a
// restart of serve), keepalives, the stream cap, a client going away, a record longer than the
// server's read chunk, a client that stops reading, and 1,000 streams at once on the defaults.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { CSV, getJSON, logRecords, sleep, startStack, upload, waitFor } from "./harness.mjs";

// parseBlocks: complete events ("...\n\n") from buf into out; returns the unparsed rest.
function parseBlocks(buf, out) {
  let i;
  while ((i = buf.indexOf("\n\n")) >= 0) {
    const block = buf.slice(0, i);
    buf = buf.slice(i + 2);
    const ev = { event: "message", id: null, data: "" };
    let comment = true;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      comment = false;
      const c = line.indexOf(":");
      const k = c < 0 ? line : line.slice(0, c);
      const v = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
      if (k === "event") ev.event = v;
      else if (k === "id") ev.id = v;
      else if (k === "data") ev.data += v;
    }
    if (comment) out.comments++;
    else if (ev.data) out.events.push({ ...ev, data: JSON.parse(ev.data) });
  }
  return buf;
}

// sse: read events until `until(events)` or the stream ends; returns {status, headers, events,
// comments}. Each event: {event, id, data}.
async function sse(url, { headers = {}, until = () => false, ms = 30000, signal } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  signal?.addEventListener("abort", () => ac.abort());
  const res = await fetch(url, { headers, signal: ac.signal });
  const out = { status: res.status, headers: res.headers, events: [], comments: 0, ended: false };
  if (res.status !== 200) {
    clearTimeout(timer);
    out.body = await res.text();
    return out;
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) { out.ended = true; break; }
      buf += dec.decode(value, { stream: true });
      buf = parseBlocks(buf, out);
      if (until(out)) break;
    }
  } catch (e) {
    if (e.name !== "AbortError") throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return out;
}

// rawStream: an event stream over node:http (many at once, pausable). ready resolves at the
// first event or the end; done when the connection is over. complete: the response ended
// properly (the server closed it after its last chunk), not cut.
function rawStream(stack, id, { agent, headers = {} } = {}) {
  const s = { status: 0, events: [], comments: 0, complete: false, res: null };
  let ready, done;
  s.ready = new Promise((r) => { ready = r; });
  s.done = new Promise((r) => { done = r; });
  let buf = "";
  s.req = http.get({ host: "127.0.0.1", port: stack.port, path: `/api/jobs/${id}/events`, agent, headers }, (res) => {
    s.status = res.statusCode;
    s.res = res;
    res.setEncoding("utf8");
    res.on("data", (d) => {
      buf = parseBlocks(buf + d, s);
      if (s.events.length) ready();
    });
    res.on("end", () => { s.complete = res.complete; });
    res.on("close", () => { s.complete ||= res.complete; ready(); done(); });
    res.on("error", () => {});
  });
  s.req.on("error", (e) => { s.error = e; ready(); done(); });
  return s;
}

const logLines = (events) => events.filter((e) => e.event === "log").map((e) => e.data.line);

async function streamGauge(stack) {
  const text = await (await fetch(`${stack.url}/api/metrics`)).text();
  return Number(/^labbox_event_streams (\d+)$/m.exec(text)[1]);
}

describe("events", () => {
  let stack;
  before(async () => {
    stack = await startStack({ config: { keepalive_ms: 300, threads: 6, max_streams: 2 } });
  });
  after(async () => stack?.stop());

  test("state first, log events with byte-offset ids, state changes, end; then close", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "slow", seconds: 1, interval: 0.1 });
    const url = `${stack.url}/api/jobs/${r.body.id}/events`;
    const s = await sse(url);
    assert.equal(s.status, 200);
    assert.match(s.headers.get("content-type"), /^text\/event-stream/);
    assert.ok(s.ended, "the server closes the stream after end");
    assert.equal(s.events[0].event, "state");
    assert.equal(s.events[0].data.id, r.body.id);
    assert.equal(s.events.at(-1).event, "end");
    const states = s.events.filter((e) => e.event === "state").map((e) => e.data.state);
    assert.equal(states.at(-1), "succeeded");
    assert.ok(states.includes("running"));
    const logs = s.events.filter((e) => e.event === "log");
    const recs = await logRecords(stack, r.body.id);
    assert.deepEqual(logs.map((e) => e.data.line), recs.map((x) => x.line), "every record once, in order");
    let off = 0;
    const body = await (await fetch(`${stack.url}/api/jobs/${r.body.id}/logs?format=ndjson`)).text();
    const lines = body.split("\n").filter(Boolean);
    for (let i = 0; i < logs.length; i++) {
      off += Buffer.byteLength(lines[i]) + 1;
      assert.equal(Number(logs[i].id), off);
      assert.ok(["stdout", "stderr", "system"].includes(logs[i].data.stream));
      assert.equal(typeof logs[i].data.t, "number");
    }
    // A state event never overtakes the log lines written before it.
    const idxSucceeded = s.events.findIndex((e) => e.event === "state" && e.data.state === "succeeded");
    const idxDoneLine = s.events.findIndex((e) => e.event === "log" && e.data.line === "done");
    assert.ok(idxDoneLine < idxSucceeded);
  });

  test("resume from the middle with Last-Event-ID and ?offset=, and after the end", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok", lines: 20 });
    await waitFor(stack, r.body.id);
    const url = `${stack.url}/api/jobs/${r.body.id}/events`;
    const all = (await sse(url)).events.filter((e) => e.event === "log");
    const mid = all[7];
    const viaHeader = (await sse(url, { headers: { "Last-Event-ID": mid.id } })).events.filter((e) => e.event === "log");
    assert.deepEqual(viaHeader.map((e) => e.id), all.slice(8).map((e) => e.id));
    const viaQuery = (await sse(`${url}?offset=${mid.id}`)).events.filter((e) => e.event === "log");
    assert.deepEqual(viaQuery.map((e) => e.data.line), all.slice(8).map((e) => e.data.line));
    const afterEnd = await sse(url, { headers: { "Last-Event-ID": all.at(-1).id } });
    assert.deepEqual(afterEnd.events.map((e) => e.event), ["state", "end"]);
    assert.ok(afterEnd.ended);
    const bad = await sse(`${url}?offset=3`);
    assert.equal(bad.status, 400);
  });

  test("resume across a restart of serve loses and repeats nothing", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "slow", seconds: 3, interval: 0.05 });
    const url = `${stack.url}/api/jobs/${r.body.id}/events`;
    const first = await sse(url, { until: (o) => o.events.filter((e) => e.event === "log" && /^tick/.test(e.data.line)).length >= 5 });
    const lastId = first.events.filter((e) => e.event === "log").at(-1).id;
    await stack.stopServe();
    await sleep(300);
    await stack.startServe();
    const second = await sse(url, { headers: { "Last-Event-ID": lastId } });
    assert.ok(second.ended);
    const lines = [...first.events, ...second.events].filter((e) => e.event === "log").map((e) => e.data.line);
    const recs = (await logRecords(stack, r.body.id)).map((x) => x.line);
    assert.deepEqual(lines, recs);
  });

  test("a stream ends when its job is deleted", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 30 });
    await waitFor(stack, r.body.id, (j) => j.state === "running");
    const url = `${stack.url}/api/jobs/${r.body.id}/events`;
    const open = sse(url, { ms: 20000 });
    await sleep(300);
    const t0 = Date.now();
        // A running job: 202, its supervisor stops the sandbox and its files go after it.
    assert.equal((await fetch(`${stack.url}/api/jobs/${r.body.id}`, { method: "DELETE" })).status, 202);
    const s = await open;
    assert.ok(s.ended, "the server closed the stream");
    assert.ok(Date.now() - t0 < 10000);
  });

  test("keepalive comments while the agent is quiet", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 2 });
    const s = await sse(`${stack.url}/api/jobs/${r.body.id}/events`);
    assert.ok(s.comments >= 3, `${s.comments} keepalives`);
    assert.ok(s.ended);
  });

  test("the stream cap answers 503 with Retry-After; a client going away frees its slot", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 20 });
    const url = `${stack.url}/api/jobs/${r.body.id}/events`;
    const acs = [new AbortController(), new AbortController()];
    const open = acs.map((ac) => sse(url, { signal: ac.signal, ms: 25000 }));
    await sleep(500);
    const third = await sse(url, { ms: 3000 });
    assert.equal(third.status, 503);
    assert.equal(JSON.parse(third.body).code, "too_many_streams");
    assert.ok(Number(third.headers.get("retry-after")) > 0);
    // Status reads are still answered while streams hold their threads.
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${stack.url}/api/jobs/${r.body.id}`)).status, 200);
    acs[0].abort();
    await open[0];
    // The server notices at its next write (a keepalive): the slot frees within ~1 s.
    let again;
    for (let i = 0; i < 20; i++) {
      await sleep(200);
      again = await sse(url, { until: (o) => o.events.length > 0, ms: 3000 });
      if (again.status === 200) break;
    }
    assert.equal(again.status, 200);
    acs[1].abort();
    await open[1];
    await fetch(`${stack.url}/api/jobs/${r.body.id}`, { method: "DELETE" });
  });

  test("a record longer than the server's read chunk is sent whole, and the lines after it", async () => {
    // 16,000 control characters: each is stored escaped (\u0001), a record of ~96 KiB.
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "long-line", chars: 16000, char: 1 });
    const s = await sse(`${stack.url}/api/jobs/${r.body.id}/events`);
    assert.ok(s.ended);
    assert.equal(s.events.at(-1).event, "end");
    const recs = (await logRecords(stack, r.body.id)).map((x) => x.line);
    assert.deepEqual(logLines(s.events), recs);
    assert.ok(recs.includes("\x01".repeat(16000)), "the long line is in the log whole");
    assert.ok(recs.includes("after"));
    const raw = fs.readFileSync(path.join(stack.data, "jobs", r.body.id, "log.jsonl"), "utf8");
    assert.ok(Math.max(...raw.split("\n").map((l) => Buffer.byteLength(l))) > 65536, "the record exceeds 64 KiB");
    // Resuming just before it gets it too.
    const logs = s.events.filter((e) => e.event === "log");
    const at = logs.findIndex((e) => e.data.line.length === 16000);
    const again = await sse(`${stack.url}/api/jobs/${r.body.id}/events`, { headers: { "Last-Event-ID": logs[at - 1].id } });
    assert.deepEqual(logLines(again.events), recs.slice(at));
  });
});

describe("events: a client that stops reading", () => {
  let stack;
  before(async () => {
    // Stalled after 4 keepalive intervals (1.2 s); a log far larger than the socket buffers.
    stack = await startStack({ config: { keepalive_ms: 300, log_max_bytes: 96 * 1024 * 1024 } });
  });
  after(async () => stack?.stop());

  test("is closed without holding up the others, frees its slot, and resumes where it was cut", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "flood", lines: 300000, width: 100 });
    const id = r.body.id;
    const agent = new http.Agent({ keepAlive: false });
    const slow = rawStream(stack, id, { agent });
    await slow.ready;
    slow.res.pause();
    // Another stream on the same job gets everything while the first one does not read.
    const fast = rawStream(stack, id, { agent });
    await fast.done;
    assert.ok(fast.complete, "the reading stream ended properly");
    assert.equal(fast.events.at(-1).event, "end");
    const recs = (await logRecords(stack, id)).map((x) => x.line);
    assert.ok(recs.length > 300000);
    assert.deepEqual(logLines(fast.events), recs);
    // The stalled stream is closed by the server: its slot frees while it still does not read.
    let open = -1;
    for (let i = 0; i < 100 && open !== 0; i++) {
      await sleep(100);
      open = await streamGauge(stack);
    }
    assert.equal(open, 0, "the stalled stream was closed");
    assert.match(stack.log(), /took nothing for 4 keepalive intervals/);
    slow.res.resume();
    await slow.done;
    assert.notEqual(slow.events.at(-1).event, "end", "the stalled stream was cut before its end");
    const got = slow.events.filter((e) => e.event === "log");
    assert.ok(got.length < recs.length);
    // It resumes with the last id it has, and the two parts are the whole log, once.
    const rest = rawStream(stack, id, { agent, headers: { "Last-Event-ID": got.at(-1).id } });
    await rest.done;
    assert.ok(rest.complete);
    assert.equal(rest.events.at(-1).event, "end");
    assert.deepEqual([...logLines(got), ...logLines(rest.events)], recs);
    agent.destroy();
  });
});

describe("events: the stream cap fits the open-file limit", () => {
  let stack;
  before(async () => {
    // 600 descriptors, soft and hard: 16 threads x 4 + 256 kept, 3 a stream: 93 streams.
    stack = await startStack({ serveWrap: ["prlimit", "--nofile=600:600", "--"] });
  });
  after(async () => stack?.stop());

  test("serve lowers max_streams to what fits, says so, and answers 503 beyond it", async () => {
    assert.match(stack.log(), /max_streams 4096 does not fit the open-file limit 600 .*at most 93 streams/);
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 30 });
    await waitFor(stack, r.body.id, (j) => j.state === "running");
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const streams = Array.from({ length: 93 }, () => rawStream(stack, r.body.id, { agent }));
    await Promise.all(streams.map((s) => s.ready));
    assert.deepEqual(streams.filter((s) => s.status !== 200).map((s) => s.status), []);
    const extra = await sse(`${stack.url}/api/jobs/${r.body.id}/events`, { ms: 3000 });
    assert.equal(extra.status, 503);
    assert.equal(JSON.parse(extra.body).code, "too_many_streams");
    // The server still has descriptors for everything else.
    assert.equal((await getJSON(stack, `/api/jobs/${r.body.id}`)).status, 200);
    for (const s of streams) s.req.destroy();
    agent.destroy();
  });
});

describe("events at scale: the default limits", () => {
  let stack;
  before(async () => {
    // max_streams, threads and keepalive_ms at their defaults; 20 jobs run at once.
    // One address uploads all 20: per-person queue quotas would refuse some while others start.
    stack = await startStack({ config: { max_concurrent: 20, identity: "none" } });
  });
  after(async () => stack?.stop());

  test("1,000 concurrent streams over 20 jobs each get every line and end", async () => {
    const JOBS = 20, PER_JOB = 50;
    const ids = [];
    for (let j = 0; j < JOBS; j++) {
      // The ticks start after 4 s, when every stream is open.
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "slow", delay: 4, seconds: 1, interval: 0.05 });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const streams = [];
    for (const id of ids) for (let k = 0; k < PER_JOB; k++) streams.push({ id, s: rawStream(stack, id, { agent }) });
    await Promise.all(streams.map((x) => x.s.ready));
    assert.deepEqual(streams.filter((x) => x.s.status !== 200).map((x) => x.s.status), []);
    assert.equal(await streamGauge(stack), JOBS * PER_JOB, "all streams open at once");
    const job = await getJSON(stack, `/api/jobs/${ids[0]}`);
    assert.equal(job.status, 200, "status reads are answered while 1,000 streams are open");
    await Promise.all(streams.map((x) => x.s.done));
    const want = {};
    for (const id of ids) {
      assert.equal((await waitFor(stack, id)).state, "succeeded");
      want[id] = (await logRecords(stack, id)).map((x) => x.line);
      assert.ok(want[id].filter((l) => l.startsWith("tick")).length >= 10);
    }
    let bad = 0;
    for (const { id, s } of streams) {
      const ok = s.complete && s.events[0].event === "state" && s.events.at(-1).event === "end" &&
        JSON.stringify(logLines(s.events)) === JSON.stringify(want[id]);
      if (!ok) bad++;
    }
    assert.equal(bad, 0, `${bad} of ${streams.length} streams missed lines or their end`);
    agent.destroy();
  });
});
