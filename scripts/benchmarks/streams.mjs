// bench/streams: many live event streams on the default stream limits: J jobs (the bench agent,
// mode "lines": a line every interval, each stamped with the agent's CLOCK_MONOTONIC) watched by
// S streams through nginx, opened before the first line. Figures: streams that got every line
// and end, the latency from the agent printing a line to each client having it (p50, p99),
// stream errors, labbox serve's CPU, and the p99 of status reads made meanwhile against the
// same reads before any stream was open.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sleep, startStack, upload } from "../../tests/integration/harness.mjs";
import { cpuSeconds, fmt, ratio, stats } from "./lib.mjs";
import { monoNs, nsToMs, openStream, parseBench, realNs, sameClock, tailFile, timedGet } from "./sse.mjs";

const AGENT_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "agent");

// statusReads: GET /api/jobs/<id> one after the other until until(n), pausing pauseMs between.
async function statusReads(stack, id, agent, until, pauseMs = 0) {
  const ms = [];
  let bad = 0;
  while (!until(ms.length)) {
    const r = await timedGet(stack.port, `/api/jobs/${id}`, agent);
    if (r.status !== 200) bad++;
    ms.push(r.ms);
    if (pauseMs) await sleep(pauseMs);
  }
  return { ...stats(ms), non_200: bad };
}

async function metricsGauge(stack) {
  const text = await (await fetch(`${stack.url}/api/metrics`)).text();
  return Number(/^labbox_event_streams (\d+)$/m.exec(text)?.[1]);
}

export async function streams(ctx) {
  const { opt } = ctx;
  const J = opt.jobs, S = opt.streams, L = opt.lines;
  /* The stream limits (max_streams, threads, keepalive_ms) stay at their defaults. */
  const stack = await startStack({ agentDir: AGENT_DIR, agentCommand: "python3 agent.py",
    config: { max_concurrent: J, wall_timeout: 900, identity: "none" } });
  const readAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const all = [];
  try {
    const delay = 5 + S / 400; /* seconds before the first line: every stream is open by then */
    const ids = [];
    for (let j = 0; j < J; j++) {
      const r = await upload(stack, [{ name: "a.csv", data: "subject,score\n1,2.5\n", type: "text/csv" }],
        { mode: "lines", lines: L, interval_ms: opt.intervalMs, delay_s: delay });
      if (r.status !== 201) throw new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`);
      ids.push(r.body.id);
    }
    const t0 = Date.now();
    ctx.progress(`streams: status reads with no stream open ...`);
    for (let i = 0; i < 50; i++) await timedGet(stack.port, `/api/jobs/${ids[0]}`, readAgent);
    const base = await statusReads(stack, ids[0], readAgent, (n) => n >= opt.reads);
    ctx.progress(`streams: opening ${S} streams over ${J} jobs ...`);
    const lat = [];
    let clockShared = null;
    let attached = null; /* lines printed before every stream was open are left out */
    let printing;
    const firstLine = new Promise((r) => { printing = r; });
    const open0 = monoNs();
    for (let i = 0; i < S; i++) {
      const id = ids[i % J];
      const st = { id, lines: 0, order: true, last: -1 };
      st.s = openStream(stack.port, id, {
        agent: streamAgent,
        onEvent: (ev, t) => {
          if (ev.event !== "log") return;
          const line = ev.data.line;
          if (clockShared === null && line.startsWith("clock ")) clockShared = sameClock(line);
          const b = parseBench(line);
          if (!b) return;
          printing();
          st.lines++;
          if (b.i !== st.last + 1) st.order = false;
          st.last = b.i;
          if (attached !== null && b.am >= attached) {
            lat.push(clockShared === false ? nsToMs(realNs() - (monoNs() - t) - b.ar) : nsToMs(t - b.am));
          }
        },
      });
      all.push(st);
    }
    await Promise.all(all.map((x) => x.s.ready));
    /* The baseline: the same lines read from each job's log.jsonl (inotify) by this process. */
    const fileLat = [];
    const tails = [];
    for (const id of ids) {
      const logPath = path.join(stack.data, "jobs", id, "log.jsonl");
      while (!fs.existsSync(logPath)) await sleep(5);
      tails.push(tailFile(logPath, (rec, t) => {
        const b = parseBench(rec.line || "");
        if (b && attached !== null && b.am >= attached) fileLat.push(nsToMs(t - b.am));
      }));
    }
    attached = monoNs();
    const openMs = nsToMs(attached - open0);
    const gauge = await metricsGauge(stack);
    const refused = all.filter((x) => x.s.status !== 200).length;
    if (refused === S) throw new Error(`every stream was refused: ${all[0].s.status} ${all[0].s.body}`);
    if (Date.now() - t0 > delay * 1000) ctx.progress("streams: WARNING: the first lines came before every stream was open");
    ctx.progress(`streams: ${gauge} open (${refused} refused) in ${fmt(openMs / 1000, 1)} s; the jobs print ...`);
    await firstLine;
    const cpu0 = cpuSeconds(stack.serve.pid), me0 = process.cpuUsage(), w0 = Date.now();
    let finished = false;
    const doneAll = Promise.all(all.map((x) => x.s.done)).then(() => { finished = true; });
    const during = await statusReads(stack, ids[0], readAgent, () => finished, 5);
    await doneAll;
    for (const t of tails) t.stop();
    const wall = (Date.now() - w0) / 1000;
    const cpu = cpuSeconds(stack.serve.pid) - cpu0;
    const me = process.cpuUsage(me0);
    const complete = all.filter((x) => x.s.status === 200 && x.s.complete && x.lines === L && x.order).length;
    const errors = {
      refused, connection: all.filter((x) => x.s.error).length,
      no_end: all.filter((x) => x.s.status === 200 && !x.s.sawEnd).length,
      missing_lines: all.filter((x) => x.s.status === 200 && (x.lines !== L || !x.order)).length,
    };
    const nerr = S - complete;
    const Lt = stats(lat);
    ctx.row({ bench: "streams", figure: `live streams over ${J} jobs, default limits: complete`, value: complete,
      baseline: `streams opened`, base: S, ratio: ratio(complete, S), target: ">= 1,000, each every line + end",
      note: `${nerr} stream errors ${JSON.stringify(errors)}; ${gauge} open at once` });
    const Ft = stats(fileLat);
    ctx.row({ bench: "streams", figure: `agent line -> SSE client, p50 ms (${S} streams)`, value: Lt.p50,
      baseline: "the line read from log.jsonl", base: Ft.p50, ratio: ratio(Lt.p50, Ft.p50), target: "",
      note: `${Lt.n} lines; ${clockShared === false ? "realtime" : "monotonic"} clock` });
    ctx.row({ bench: "streams", figure: `agent line -> SSE client, p99 ms (${S} streams)`, value: Lt.p99,
      baseline: "the line read from log.jsonl", base: Ft.p99, ratio: ratio(Lt.p99, Ft.p99), target: "< 5 ms",
      note: `max ${fmt(Lt.max, 1)} vs ${fmt(Ft.max, 1)} ms` });
    ctx.row({ bench: "streams", figure: "status read during it, p99 ms", value: during.p99,
      baseline: "the same reads, no stream open", base: base.p99, ratio: ratio(during.p99, base.p99), target: "",
      note: `p50 ${fmt(during.p50, 2)} vs ${fmt(base.p50, 2)}; ${during.n} reads, ${during.non_200} non-200` });
    ctx.row({ bench: "streams", figure: "labbox serve CPU while streaming, % of one core", value: (100 * cpu) / wall,
      baseline: "", base: NaN, ratio: NaN, target: "",
      note: `${fmt(all.reduce((a, x) => a + x.lines, 0) / wall, 0)} lines/s received; this client used ${fmt((100 * (me.user + me.system)) / 1e6 / wall, 0)}%` });
    return { jobs: J, streams: S, lines: L, interval_ms: opt.intervalMs, open_ms: openMs, open_at_once: gauge,
      complete, errors, latency_ms: Lt, clock_shared: clockShared, status_reads_before: base,
      file_latency_ms: Ft, status_reads_during: during, serve_cpu_s: cpu, wall_s: wall };
  } finally {
    for (const x of all) x.s.close();
    readAgent.destroy();
    streamAgent.destroy();
    await sleep(100);
    await stack.stop();
  }
}
