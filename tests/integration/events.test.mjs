// events: Server-Sent Events of docs/api.md: order, ids, resume (middle, after the end, across a
// restart of serve), keepalives, the stream cap, and a client going away.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CSV, logRecords, sleep, startStack, upload, waitFor } from "./harness.mjs";

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
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = { event: "message", id: null, data: "" };
        let isComment = true;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          isComment = false;
          const [k, ...rest] = line.split(":");
          const v = rest.join(":").replace(/^ /, "");
          if (k === "event") ev.event = v;
          else if (k === "id") ev.id = v;
          else if (k === "data") ev.data += v;
        }
        if (isComment) out.comments++;
        else if (ev.event !== "message" || ev.data) out.events.push({ ...ev, data: ev.data ? JSON.parse(ev.data) : null });
      }
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
});
