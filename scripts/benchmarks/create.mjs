// bench/create: job creation from a 1 KiB CSV: the latency of one POST /api/jobs at a time
// (p50, p99) and the jobs created per second by 8 concurrent clients (wrk), each against the
// bare write-through libfcgi handler taking the same form (one POST at a time also against the
// same handler syncing the file and its directory before answering: what one durable file costs
// on this disk); then, with strace, the fsyncs and renames labbox does per created job. The jobs do not run meanwhile: the first one holds the
// only slot (max_concurrent 1, an agent that sleeps), the others queue.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { TERMINAL, sleep, startStack } from "../../tests/integration/harness.mjs";
import { fmt, multipart, post, ratio, startBenchNginx, stats, wrk, wrkPostScript } from "./lib.mjs";

function csv1k() {
  let s = "subject,condition,score\n";
  for (let i = 1; s.length < 1024 - 24; i++) s += `${String(i).padStart(4, "0")},${i % 2 ? "treated" : "control"},${(50 + i * 0.5).toFixed(1)}\n`;
  return s.padEnd(1023, "#") + "\n";
}

async function sequential(url, form, n, want) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ms = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const r = await post(url, form.body, form.contentType, agent);
      if (r.status !== want) throw new Error(`POST ${url}: ${r.status} ${r.body.slice(0, 300)}`);
      if (i >= 20) ms.push(r.ms); /* 20 warm-ups */
    }
  } finally {
    agent.destroy();
  }
  return stats(ms);
}

// syscalls: fsync, fdatasync and rename* calls of labbox serve (all threads) during n creations.
async function syscalls(stack, form, n) {
  if (spawnSync("sh", ["-c", "command -v strace"]).status !== 0) return null;
  const names = ["fsync", "fdatasync", "sync_file_range", "rename", "renameat", "renameat2", "mkdir", "mkdirat"];
  const st = spawn("strace", ["-f", "-c", "-p", String(stack.serve.pid), "-e", `trace=${names.join(",")}`],
    { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  st.stderr.on("data", (d) => { err += d; });
  await sleep(500); /* attached to every thread */
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < n; i++) await post(`${stack.url}/api/jobs`, form.body, form.contentType, agent);
  agent.destroy();
  await sleep(200);
  const done = new Promise((r) => st.on("exit", r));
  st.kill("SIGINT");
  await done;
  const per = {};
  for (const line of err.split("\n")) {
    const m = line.trim().match(/^[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/);
    if (m && names.includes(m[2])) per[m[2]] = Number(m[1]) / n;
  }
  return per;
}

// statuses: {status: count} of the nginx access log's lines after byte `from`.
function statuses(file, from) {
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(fs.fstatSync(fd).size - from);
  fs.readSync(fd, buf, 0, buf.length, from);
  fs.closeSync(fd);
  const out = {};
  for (const m of buf.toString("latin1").matchAll(/" (\d{3}) /g)) out[m[1]] = (out[m[1]] || 0) + 1;
  return out;
}

export async function create(ctx) {
  const { opt } = ctx;
  const stack = await startStack({ agentCommand: "sleep 3600", uploadRate: "1000000r/s",
    config: { max_queue: 1000000, max_concurrent: 1, wall_timeout: 3600, identity: "none" } });
  let bench = null;
  try {
    bench = await startBenchNginx(path.join(ctx.tmp, "create-nginx"));
    const form = multipart([{ name: "data.csv", data: csv1k(), type: "text/csv" }]);
    ctx.progress(`create: ${opt.createN} sequential POSTs each ...`);
    const bare1 = await sequential(`${bench.url}/bare/upload`, form, opt.createN, 201);
    bench.clearUploads();
    const lab1 = await sequential(`${stack.url}/api/jobs`, form, opt.createN, 201);
    const sync1 = await sequential(`${bench.url}/bare/upload?sync=1`, form, opt.createN, 201);
    bench.clearUploads();
    const script = wrkPostScript(path.join(ctx.tmp, "create.lua"), form.body.toString("latin1"), form.contentType);
    const w = { threads: 2, connections: 8, duration: opt.duration, script };
    ctx.progress(`create: wrk ${opt.duration}s, 8 connections, each ...`);
    const bareN = await wrk(`${bench.url}/bare/upload`, w);
    bench.clearUploads();
    const logFile = path.join(stack.dir, "nginx/access.log");
    const logFrom = fs.statSync(logFile).size;
    const labN = await wrk(`${stack.url}/api/jobs`, w);
    labN.statuses = statuses(logFile, logFrom);
    const okRate = (r) => r.rps * (1 - (r.non2xx + r.socket_errors) / Math.max(1, r.requests));
    ctx.progress("create: fsyncs and renames per job (strace) ...");
    const sys = await syscalls(stack, form, 20);
    ctx.row({ bench: "create", figure: "create a job from 1 KiB, p50 ms (one client)", value: lab1.p50,
      baseline: "bare handler writing the same form", base: bare1.p50, ratio: ratio(lab1.p50, bare1.p50),
      target: "<= 3 ms", note: `p99 ${fmt(lab1.p99, 2)} vs ${fmt(bare1.p99, 2)} ms` });
    ctx.row({ bench: "create", figure: "  the same, against one durable file", value: lab1.p50,
      baseline: "bare handler + fdatasync + fsync(dir)", base: sync1.p50, ratio: ratio(lab1.p50, sync1.p50), target: "",
      note: `p99 ${fmt(lab1.p99, 2)} vs ${fmt(sync1.p99, 2)} ms` });
    ctx.row({ bench: "create", figure: "jobs created/s (8 clients)", value: okRate(labN),
      baseline: "bare handler writing the same form", base: okRate(bareN), ratio: ratio(okRate(labN), okRate(bareN)),
      target: ">= 300/s", note: `answers ${JSON.stringify(labN.statuses)}` +
        (sys ? `; per job: ${Object.entries(sys).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(", ") || "no fsync/rename"}` : "") });
    return { one_client_ms: lab1, one_client_bare_ms: bare1, one_client_bare_sync_ms: sync1, wrk: { labbox: labN, bare: bareN }, syscalls_per_job: sys };
  } finally {
    bench?.stop();
    await dropQueue(stack);
    await stack.stop();
  }
}

// dropQueue: thousands of queued jobs would take minutes of DELETEs: end the ones that run
// through the API, stop serve, and remove the queued ones' directories.
async function dropQueue(stack) {
  const jobs = path.join(stack.data, "jobs");
  const state = (id) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(jobs, id, "job.json"), "utf8")).state;
    } catch {
      return null;
    }
  };
  const ids = fs.existsSync(jobs) ? fs.readdirSync(jobs) : [];
  for (const id of ids) {
    const st = state(id);
    if (st && st !== "queued" && !TERMINAL.includes(st)) await fetch(`${stack.url}/api/jobs/${id}`, { method: "DELETE" });
  }
  await stack.stopServe();
  for (const id of ids) if (state(id) === "queued") fs.rmSync(path.join(jobs, id), { recursive: true, force: true });
}
