// bench/events: figures for "Live logs over SSE" (a benchmark: it prints, it asserts nothing).
//   node scripts/bench/events.mjs [--lines N] [--interval-ms MS] [--threads T] [--max-streams M]
//        [--keepalive-ms MS] [--reads N] [--backend local|docker|modal] [--only latency|streams]
//        [--json]
// 1. latency: a bench agent prints timestamped lines; this process receives them over SSE
//    (through nginx) and, as the baseline, by tailing log.jsonl itself with inotify (fs.watch).
// 2. streams: K event streams on one running job, K = 8, 16, 32, ... max_streams; at each step
//    the latency of GET /api/jobs/<id> and whether every stream still gets its keepalives;
//    then stream max_streams + 1 (expected 503). Baseline: the same reads with no stream open.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ROOT, TERMINAL, sleep, startStack, stopServices, upload } from "../../tests/integration/harness.mjs";

const AGENT_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "agent");
const CSV = "subject,score\n1,2.5\n2,3.5\n";

function parseArgs(argv) {
  const o = { lines: 200, intervalMs: 20, threads: 128, maxStreams: null, keepaliveMs: 500,
    reads: 200, backend: process.env.LABBOX_TEST_BACKEND || "local", only: null, json: false };
  const num = (a, v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} wants a positive number, not ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} wants a value`);
      return argv[++i];
    };
    if (a === "--lines") o.lines = Math.round(num(a, v()));
    else if (a === "--interval-ms") o.intervalMs = num(a, v());
    else if (a === "--threads") o.threads = Math.round(num(a, v()));
    else if (a === "--max-streams") o.maxStreams = Math.round(num(a, v()));
    else if (a === "--keepalive-ms") o.keepaliveMs = Math.round(num(a, v()));
    else if (a === "--reads") o.reads = Math.round(num(a, v()));
    else if (a === "--backend") o.backend = v();
    else if (a === "--only") o.only = v();
    else if (a === "--json") o.json = true;
    else if (a === "-h" || a === "--help") {
      const src = fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
      process.stdout.write(src.slice(0, 9).map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.maxStreams === null) o.maxStreams = Math.max(1, o.threads - 4);
  if (o.maxStreams + 2 > o.threads) throw new Error(`--max-streams must leave 2 of --threads for other requests`);
  if (o.only && !["latency", "streams"].includes(o.only)) throw new Error("--only takes latency or streams");
  if (o.keepaliveMs < 100) throw new Error("--keepalive-ms must be at least 100 (labbox's lower bound)");
  return o;
}

let opt;
try {
  opt = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`bench-events: ${e.message} (--help shows the flags)`);
  process.exit(2);
}
const say = (...a) => (opt.json ? console.error : console.log)(...a);
const progress = (...a) => console.error(...a);

// Clocks. hrtime is CLOCK_MONOTONIC on Linux (libuv); realtime with sub-ms precision is
// timeOrigin (realtime at start) + performance.now() (monotonic since then).
const monoNs = () => process.hrtime.bigint();
const realNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
const ms = (ns) => Number(ns) / 1e6;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] : NaN);
  return { n: s.length, median: q(0.5), p90: q(0.9), p99: q(0.99), max: s.length ? s.at(-1) : NaN };
}
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const ratio = (a, b) => (b > 0 ? a / b : NaN);

function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padStart(w[i])).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

// openStream: GET the events url with node:http; counts keepalive comments, stamps every chunk
// with the monotonic clock on arrival and hands each event to onEvent(ev, stampNs).
// ready resolves once the status is known and, for 200, the first state event has come.
function openStream(stack, id, { onEvent = () => {}, agent } = {}) {
  const s = { status: 0, comments: 0, events: 0, lastRecv: 0n, ended: false, error: null, body: "",
    headers: {}, req: null };
  let readyRes;
  s.ready = new Promise((r) => { readyRes = r; });
  s.req = http.get({ host: "127.0.0.1", port: stack.port, path: `/api/jobs/${id}/events`, agent }, (res) => {
    s.status = res.statusCode;
    s.headers = res.headers;
    res.setEncoding("utf8");
    if (res.statusCode !== 200) {
      res.on("data", (d) => { s.body += d; });
      res.on("end", () => readyRes(s));
      return;
    }
    let buf = "";
    res.on("data", (chunk) => {
      const t = monoNs();
      s.lastRecv = t;
      buf += chunk;
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
        if (comment) { s.comments++; continue; }
        if (!ev.data) continue; /* the retry: field */
        s.events++;
        const data = JSON.parse(ev.data);
        if (ev.event === "state") readyRes(s);
        onEvent({ event: ev.event, id: ev.id, data }, t);
      }
    });
    res.on("end", () => { s.ended = true; readyRes(s); });
    res.on("error", (e) => { s.error = e; readyRes(s); });
  });
  s.req.on("error", (e) => { if (!s.closing) s.error = e; readyRes(s); });
  s.close = () => { s.closing = true; s.req.destroy(); };
  return s;
}

// tailFile: the baseline reader: inotify (fs.watch) on log.jsonl, reading every appended byte,
// stamping each record with the monotonic clock when its bytes are read.
function tailFile(file, onRecord) {
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(1 << 20);
  let off = 0;
  let rest = "";
  const pump = () => {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, off);
      if (n <= 0) return;
      const t = monoNs();
      off += n;
      rest += buf.toString("utf8", 0, n);
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        const rec = rest.slice(0, i);
        rest = rest.slice(i + 1);
        onRecord(JSON.parse(rec), t);
      }
    }
  };
  const w = fs.watch(file, { persistent: false }, pump);
  pump();
  return { stop: () => { w.close(); fs.closeSync(fd); } };
}

function timedGet(stack, p, agent) {
  return new Promise((resolve, reject) => {
    const t0 = monoNs();
    const req = http.get({ host: "127.0.0.1", port: stack.port, path: p, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode, ms: ms(monoNs() - t0), body }));
    });
    req.on("error", reject);
  });
}

async function waitState(stack, id, pred, timeoutMs = 60000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const end = Date.now() + timeoutMs;
  try {
    for (;;) {
      const r = await timedGet(stack, `/api/jobs/${id}`, agent);
      const job = JSON.parse(r.body);
      if (pred(job)) return job;
      if (Date.now() > end) throw new Error(`job ${id} stuck in ${job.state}`);
      await sleep(20);
    }
  } finally {
    agent.destroy();
  }
}

async function waitFile(file, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > end) throw new Error(`${file} did not appear`);
    await sleep(2);
  }
}

// Part 1: agent print -> SSE client, and agent print -> log.jsonl (the baseline).
async function benchLatency(stack) {
  const delayS = 1.5;
  const r = await upload(stack, [{ name: "a.csv", data: CSV, type: "text/csv" }],
    { mode: "lines", lines: opt.lines, interval_ms: opt.intervalMs, delay_s: delayS });
  if (r.status !== 201 && r.status !== 202) throw new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`);
  const id = r.body.id;
  const sse = new Map(); // i -> {mono, real, rt(agent realtime), am(agent mono)}
  const file = new Map();
  let clock = null;
  let attachedSse = 0n;
  let attachedFile = 0n;
  let endSeen;
  const ended = new Promise((res) => { endSeen = res; });
  const parse = (line) => {
    const m = /^bench (\d+) (\d+) (\d+)$/.exec(line);
    return m ? { i: Number(m[1]), am: BigInt(m[2]), ar: BigInt(m[3]) } : null;
  };
  const stream = openStream(stack, id, {
    onEvent: (ev, t) => {
      if (ev.event === "end") { endSeen(); return; }
      if (ev.event !== "log") return;
      const line = ev.data.line;
      if (line.startsWith("clock ")) {
        const [, rt, mono] = line.split(" ");
        clock = { agentReal: BigInt(rt), agentMono: BigInt(mono) };
        return;
      }
      const b = parse(line);
      if (b) sse.set(b.i, { ...b, recvMono: t, recvReal: realNs() - (monoNs() - t) });
    },
  });
  await stream.ready;
  if (stream.status !== 200) throw new Error(`events: ${stream.status} ${stream.body}`);
  attachedSse = monoNs();
  const logPath = path.join(stack.data, "jobs", id, "log.jsonl");
  await waitFile(logPath);
  const tail = tailFile(logPath, (rec, t) => {
    const b = parse(rec.line || "");
    if (b) file.set(b.i, { ...b, recvMono: t });
  });
  attachedFile = monoNs();
  let timer;
  const guard = new Promise((res) => { timer = setTimeout(() => res("timeout"), 60000 + opt.lines * opt.intervalMs * 2); });
  const how = await Promise.race([ended.then(() => "end"), guard]);
  clearTimeout(timer);
  tail.stop();
  stream.close();
  if (how !== "end") throw new Error("the latency job did not end in time");

  // Does the agent's CLOCK_MONOTONIC equal ours (no time namespace in the sandbox)? Both sides
  // measure realtime - monotonic; with one shared monotonic clock the two agree to a few us
  // (plus our sub-ms realtime estimate's error). Per line, both clocks give a latency too.
  const ourOffset = realNs() - monoNs();
  const agentOffset = clock ? clock.agentReal - clock.agentMono : null;
  const offsetDiffMs = agentOffset === null ? NaN : ms(ourOffset - agentOffset);
  const attached = attachedSse > attachedFile ? attachedSse : attachedFile;
  const keep = [...sse.values()].filter((b) => b.am >= attached);
  const dropped = sse.size - keep.length;
  const viaMono = keep.map((b) => ms(b.recvMono - b.am));
  const viaReal = keep.map((b) => ms(b.recvReal - b.ar));
  const disagree = viaMono.map((x, k) => Math.abs(x - viaReal[k]));
  const shared = Number.isFinite(offsetDiffMs) && Math.abs(offsetDiffMs) < 2 && Math.max(0, ...disagree) < 2;
  const sseLat = shared ? viaMono : viaReal;
  const fileLat = [];
  const overhead = [];
  for (const b of keep) {
    const fb = file.get(b.i);
    if (!fb) continue;
    const fl = shared ? ms(fb.recvMono - b.am) : ms(fb.recvMono - b.recvMono) + ms(b.recvReal - b.ar);
    fileLat.push(fl);
    overhead.push(ms(b.recvMono - fb.recvMono));
  }
  const S = stats(sseLat);
  const F = stats(fileLat);
  return {
    job: id,
    lines_printed: opt.lines,
    interval_ms: opt.intervalMs,
    lines_received_sse: sse.size,
    lines_received_file: file.size,
    lines_before_attach: dropped,
    clock: {
      basis: shared ? "CLOCK_MONOTONIC (shared with the sandbox)" : "CLOCK_REALTIME (monotonic clocks differ)",
      monotonic_shared: shared,
      offset_diff_ms: offsetDiffMs,
      mono_vs_realtime_max_diff_ms: Math.max(0, ...disagree),
    },
    sse_ms: S,
    file_ms: F,
    sse_minus_file_ms: stats(overhead),
    ratio_median: ratio(S.median, F.median),
    ratio_p99: ratio(S.p99, F.p99),
  };
}

// Part 2: K streams on one running job; status reads; keepalives; the cap.
async function benchStreams(stack) {
  const r = await upload(stack, [{ name: "a.csv", data: CSV, type: "text/csv" }], { mode: "hold", seconds: 600 });
  if (r.status !== 201 && r.status !== 202) throw new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`);
  const id = r.body.id;
  const job = await waitState(stack, id, (j) => j.state === "running" || TERMINAL.includes(j.state));
  if (job.state !== "running") throw new Error(`the hold job ended early: ${job.state} ${job.reason}`);
  await sleep(500); /* let the sandbox's start-up settle before the baseline */
  const readAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const streams = [];
  const reads = async () => {
    const lat = [];
    let bad = 0;
    for (let i = 0; i < 50; i++) await timedGet(stack, `/api/jobs/${id}`, readAgent); // warm-up
    for (let i = 0; i < opt.reads; i++) {
      const x = await timedGet(stack, `/api/jobs/${id}`, readAgent);
      if (x.status !== 200) bad++;
      lat.push(x.ms);
    }
    return { ...stats(lat), non_200: bad };
  };
  try {
    const base = await reads();
    progress(`streams: baseline status read median ${f2(base.median)} ms`);
    const steps = [];
    for (let k = 8; k < opt.maxStreams; k *= 2) steps.push(k);
    steps.push(opt.maxStreams);
    const rows = [];
    for (const k of steps) {
      const fresh = [];
      const t0 = monoNs();
      while (streams.length < k) {
        const s = openStream(stack, id, { agent: streamAgent });
        streams.push(s);
        fresh.push(s);
      }
      await Promise.all(fresh.map((s) => s.ready));
      const openMs = ms(monoNs() - t0);
      const refused = fresh.filter((s) => s.status !== 200).length;
      const before = streams.map((s) => s.comments);
      const stepStart = monoNs();
      const rd = await reads();
      // Every stream must show a keepalive written after the reads began: wait two intervals.
      const waitMs = 2 * opt.keepaliveMs + 200 - ms(monoNs() - stepStart);
      if (waitMs > 0) await sleep(waitMs);
      const now = monoNs();
      const alive = streams.filter((s, j) => s.status === 200 && !s.ended && !s.error &&
        s.comments > before[j] && ms(now - s.lastRecv) <= 2 * opt.keepaliveMs).length;
      rows.push({ streams: k, open_ms: openMs, refused, alive, reads: rd, ratio_median: ratio(rd.median, base.median),
        ratio_p99: ratio(rd.p99, base.p99) });
      progress(`streams: ${k} open, ${alive} alive, status read median ${f2(rd.median)} ms`);
    }
    // One more than the cap.
    const extra = openStream(stack, id, { agent: streamAgent });
    await extra.ready;
    extra.close();
    let code = null;
    try { code = JSON.parse(extra.body).code; } catch { /* not json */ }
    const overCap = { status: extra.status, code, retry_after: extra.headers["retry-after"] ?? null };
    // Close them all: the server notices at its next keepalive write and frees the threads.
    for (const s of streams) s.close();
    const closedAt = monoNs();
    let freedMs = NaN;
    for (let i = 0; i < 100; i++) {
      const s = openStream(stack, id, { agent: streamAgent });
      await s.ready;
      s.close();
      if (s.status === 200) { freedMs = ms(monoNs() - closedAt); break; }
      await sleep(50);
    }
    const afterRows = await reads();
    return { job: id, threads: opt.threads, max_streams: opt.maxStreams, keepalive_ms: opt.keepaliveMs,
      reads_per_step: opt.reads, baseline: base, steps: rows, over_cap: overCap,
      slot_free_after_close_ms: freedMs, after_close: afterRows };
  } finally {
    for (const s of streams) s.close();
    readAgent.destroy();
    streamAgent.destroy();
  }
}

function report(res) {
  const L = res.latency;
  if (L) {
    say(`\n== 1. Latency: agent prints a line -> client has it (${L.lines_printed} lines, every ${L.interval_ms} ms) ==`);
    say(L.clock.monotonic_shared
      ? "clock check: the agent's time.monotonic_ns() and our process.hrtime.bigint() are one clock " +
        "(CLOCK_MONOTONIC; the sandbox has no time namespace)"
      : "clock check: the agent's CLOCK_MONOTONIC is NOT ours (a time namespace or another host); " +
        "latencies fall back to CLOCK_REALTIME");
    say(`  (realtime - monotonic: agent vs client ${f2(L.clock.offset_diff_ms)} ms apart; per line, ` +
      `monotonic- and realtime-based latencies differ by at most ${f2(L.clock.mono_vs_realtime_max_diff_ms)} ms)`);
    say(`received: ${L.lines_received_sse} over SSE, ${L.lines_received_file} from log.jsonl` +
      (L.lines_before_attach ? ` (${L.lines_before_attach} printed before both readers attached, left out)` : ""));
    say(table(["path", "n", "median ms", "p90 ms", "p99 ms", "max ms"], [
      ["agent -> log.jsonl (baseline)", L.file_ms.n, f2(L.file_ms.median), f2(L.file_ms.p90), f2(L.file_ms.p99), f2(L.file_ms.max)],
      ["agent -> SSE client via nginx", L.sse_ms.n, f2(L.sse_ms.median), f2(L.sse_ms.p90), f2(L.sse_ms.p99), f2(L.sse_ms.max)],
      ["SSE - log.jsonl, per line", L.sse_minus_file_ms.n, f2(L.sse_minus_file_ms.median), f2(L.sse_minus_file_ms.p90),
        f2(L.sse_minus_file_ms.p99), f2(L.sse_minus_file_ms.max)],
    ]));
    say(`SSE / baseline: median x${f2(L.ratio_median)}, p99 x${f2(L.ratio_p99)}`);
  }
  const S = res.streams;
  if (S) {
    say(`\n== 2. Concurrent streams on one running job (threads=${S.threads}, max_streams=${S.max_streams}, ` +
      `keepalive_ms=${S.keepalive_ms}; ${S.reads_per_step} sequential GET /api/jobs/<id> per step) ==`);
    const rows = [["0 (baseline)", "-", "-", f2(S.baseline.median), f2(S.baseline.p99), f2(S.baseline.max), S.baseline.non_200, "x1.00", "x1.00"]];
    for (const r of S.steps) {
      rows.push([r.streams, `${r.alive}/${r.streams}`, f2(r.open_ms), f2(r.reads.median), f2(r.reads.p99), f2(r.reads.max),
        r.reads.non_200, `x${f2(r.ratio_median)}`, `x${f2(r.ratio_p99)}`]);
    }
    rows.push(["0 (all closed)", "-", "-", f2(S.after_close.median), f2(S.after_close.p99), f2(S.after_close.max),
      S.after_close.non_200, `x${f2(ratio(S.after_close.median, S.baseline.median))}`,
      `x${f2(ratio(S.after_close.p99, S.baseline.p99))}`]);
    say(table(["streams", "alive", "open ms", "read median ms", "read p99 ms", "read max ms", "non-200", "median/base", "p99/base"], rows));
    const refused = S.steps.reduce((a, r) => a + r.refused, 0);
    if (refused) say(`streams refused below the cap: ${refused}`);
    say(`stream ${S.max_streams + 1}: HTTP ${S.over_cap.status}` + (S.over_cap.code ? ` ${S.over_cap.code}` : "") +
      (S.over_cap.retry_after ? `, Retry-After: ${S.over_cap.retry_after}` : ""));
    say(`after closing every stream, a new one was accepted within ${f2(S.slot_free_after_close_ms)} ms`);
  }
}

async function main() {
  const config = { threads: opt.threads, max_streams: opt.maxStreams, keepalive_ms: opt.keepaliveMs,
    max_concurrent: 2, wall_timeout: 900 };
  progress(`starting nginx + labbox serve (${opt.backend} backend, ${path.relative(ROOT, AGENT_DIR)})`);
  const stack = await startStack({ backend: opt.backend, agentDir: AGENT_DIR, agentCommand: "python3 agent.py", config });
  const stop = async () => {
    await stack.stop().catch(() => {});
    stopServices();
  };
  const onSignal = () => { stop().finally(() => process.exit(130)); };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const res = { version: 1, backend: opt.backend, cpus: (await import("node:os")).cpus().length };
  const t0 = Date.now();
  try {
    if (opt.only !== "streams") {
      progress("latency: running the lines agent");
      res.latency = await benchLatency(stack);
    }
    if (opt.only !== "latency") {
      progress("streams: running the hold agent");
      res.streams = await benchStreams(stack);
    }
  } finally {
    await stop();
  }
  res.seconds = (Date.now() - t0) / 1000;
  if (opt.json) process.stdout.write(JSON.stringify(res, null, 2) + "\n");
  else {
    report(res);
    say(`\n(${res.backend} backend, ${res.cpus} CPUs, ${f2(res.seconds)} s)`);
  }
}

main().catch((e) => {
  console.error(`bench-events: ${e.stack || e}`);
  process.exit(1);
});
