// bench/latency: one stream, one job: the bench agent prints a line every 20 ms, each stamped
// with its CLOCK_MONOTONIC; this process receives them over the event stream through nginx
// and, as the baseline in the same run, by tailing log.jsonl itself with inotify (fs.watch).
// The difference is what labbox and nginx add to a line already in the log.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sleep, startStack, upload } from "../../tests/integration/harness.mjs";
import { ratio, stats } from "./lib.mjs";
import { monoNs, nsToMs, openStream, parseBench, realNs, sameClock, tailFile } from "./sse.mjs";

const AGENT_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "agent");

export async function latency(ctx) {
  const lines = 200, intervalMs = 20;
  const stack = await startStack({ agentDir: AGENT_DIR, agentCommand: "python3 agent.py" });
  try {
    const r = await upload(stack, [{ name: "a.csv", data: "subject,score\n1,2.5\n", type: "text/csv" }],
      { mode: "lines", lines, interval_ms: intervalMs, delay_s: 1.5 });
    if (r.status !== 201) throw new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`);
    const id = r.body.id;
    const sse = new Map(), file = new Map();
    let shared = null;
    const stream = openStream(stack.port, id, {
      onEvent: (ev, t) => {
        if (ev.event !== "log") return;
        if (shared === null && ev.data.line.startsWith("clock ")) shared = sameClock(ev.data.line);
        const b = parseBench(ev.data.line);
        if (b) sse.set(b.i, { ...b, t, real: realNs() - (monoNs() - t) });
      },
    });
    await stream.ready;
    if (stream.status !== 200) throw new Error(`events: ${stream.status} ${stream.body}`);
    const logPath = path.join(stack.data, "jobs", id, "log.jsonl");
    while (!fs.existsSync(logPath)) await sleep(2);
    const tail = tailFile(logPath, (rec, t) => {
      const b = parseBench(rec.line || "");
      if (b) file.set(b.i, { ...b, t });
    });
    const attached = monoNs();
    ctx.progress(`latency: ${lines} lines, one every ${intervalMs} ms ...`);
    await stream.done;
    tail.stop();
    if (!stream.complete) throw new Error("the latency job's stream did not end properly");
    const keep = [...sse.values()].filter((b) => b.am >= attached);
    const viaSse = keep.map((b) => (shared === false ? nsToMs(b.real - b.ar) : nsToMs(b.t - b.am)));
    const viaFile = keep.filter((b) => file.has(b.i)).map((b) => nsToMs(file.get(b.i).t - b.am));
    const S = stats(viaSse), F = stats(viaFile);
    ctx.row({ bench: "latency", figure: "agent line -> SSE client, p50 ms (one stream)", value: S.p50,
      baseline: "the line read from log.jsonl (inotify)", base: F.p50, ratio: ratio(S.p50, F.p50), target: "",
      note: `p99 ${S.p99.toFixed(2)} vs ${F.p99.toFixed(2)} ms; ${S.n} lines` });
    return { lines, interval_ms: intervalMs, clock_shared: shared, sse_ms: S, file_ms: F };
  } finally {
    await stack.stop();
  }
}
