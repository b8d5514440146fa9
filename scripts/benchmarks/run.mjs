// bench/run: every benchmark of labbox in one run, one table, one JSON file. A benchmark prints
// figures beside baselines measured in the same run and their ratio; it asserts nothing about
// speed (it fails only when the stack misbehaves). Run it through scripts/bench, which installs
// what it needs and builds first.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { BUILD, ROOT, stopServices } from "../../tests/integration/harness.mjs";
import { create } from "./create.mjs";
import { latency } from "./latency.mjs";
import { fmt, table } from "./lib.mjs";
import { reads } from "./reads.mjs";
import { start } from "./start.mjs";
import { streams } from "./streams.mjs";
import { uploads } from "./uploads.mjs";

const USAGE = `usage: scripts/bench [--only LIST] [--json FILE] [options]
Benchmarks, in the order they run (all by default; --only picks, comma-separated):
  reads    GET /api/jobs/<id> (wrk) vs the bare fixed-bytes libfcgi handler and a static file
  uploads  POST /api/jobs with one file vs the bare write-through handler and nginx's PUT spool
  create   job creation from a 1 KiB file: p50 latency and jobs/s vs the bare handler
  start    POST -> the agent's first line on the stream vs bare bwrap running the same echo
  streams  S live streams over J jobs on the default limits: complete streams, line latency,
           status reads meanwhile
  latency  one stream: agent line -> client vs the same line read from log.jsonl
  modal    the same Modal job through the official SDK and through labbox (fake Modal server)
Options:
  --json FILE        every figure as JSON (default <build>/bench.json)
  --duration S       wrk seconds per measurement (5)      --connections C  wrk connections (32)
  --runs N           read rounds (3), upload runs (3), start runs (20), modal runs (5): N for all
  --sizes MiB,...    upload sizes (200)                   --create-n N     sequential creations (200)
  --streams S        streams (1000)   --jobs J (20)   --lines L per job (100)   --interval-ms (100)`;

const ALL = ["reads", "uploads", "create", "start", "streams", "latency", "modal"];

function parseArgs(argv) {
  const o = { only: ALL, json: path.join(BUILD, "bench.json"), duration: 5, connections: 32, wrkThreads: 2,
    readRounds: 3, uploadRuns: 3, startRuns: 20, modalRuns: 5, sizes: [200], createN: 200, streams: 1000, jobs: 20,
    lines: 100, intervalMs: 100, reads: 300 };
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
    if (a === "--only") o.only = v().split(",").filter(Boolean);
    else if (a === "--json") o.json = path.resolve(v());
    else if (a === "--duration") o.duration = Math.round(num(a, v()));
    else if (a === "--connections") o.connections = Math.round(num(a, v()));
    else if (a === "--runs") o.readRounds = o.uploadRuns = o.startRuns = o.modalRuns = Math.round(num(a, v()));
    else if (a === "--sizes") o.sizes = v().split(",").map((s) => num(a, s));
    else if (a === "--create-n") o.createN = Math.round(num(a, v()));
    else if (a === "--streams") o.streams = Math.round(num(a, v()));
    else if (a === "--jobs") o.jobs = Math.round(num(a, v()));
    else if (a === "--lines") o.lines = Math.round(num(a, v()));
    else if (a === "--interval-ms") o.intervalMs = num(a, v());
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const b of o.only) if (!ALL.includes(b)) throw new Error(`unknown benchmark ${b} (${ALL.join(", ")})`);
  return o;
}

// modal: scripts/benchmarks/modal.mjs in its own process (it owns the fake Modal server and the SDK).
async function modal(ctx) {
  const env = { ...process.env, LABBOX_BUILD_DIR: BUILD };
  if (!fs.existsSync(path.join(BUILD, "bench/bench_modal_backend"))) env.BENCH_MODAL_NO_BACKEND = "1";
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/benchmarks/modal.mjs"), "--json", "--runs", String(ctx.opt.modalRuns)],
    { env, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  const code = await new Promise((r) => child.on("exit", r));
  if (code !== 0) throw new Error(`modal.mjs exited ${code}`);
  const res = JSON.parse(out);
  const side = (n) => res.results.find((r) => r.side === n);
  const base = side("sdk-v1");
  for (const n of ["labbox-http", "labbox-backend"]) {
    const r = side(n);
    if (!r) continue;
    ctx.row({ bench: "modal", figure: `Modal job via ${n}, wall ms (median)`, value: r.wall_ms.median,
      baseline: "official JS SDK (V1 sandboxes)", base: base.wall_ms.median, ratio: r.wall_ms.median / base.wall_ms.median,
      target: "", note: `RPCs ${r.rpc_total} vs ${base.rpc_total}; first job ${r.first_job_rpc_total} vs ${base.first_job_rpc_total}` });
    ctx.row({ bench: "modal", figure: `Modal job via ${n}, RPCs of a later job (median)`, value: r.rpc_total,
      baseline: "official JS SDK (V1 sandboxes)", base: base.rpc_total, ratio: r.rpc_total / base.rpc_total,
      target: "<= 14", note: `the first job: ${r.first_job_rpc_total} vs ${base.first_job_rpc_total}` });
  }
  return res;
}

const BENCHES = { reads, uploads, create, start, streams, latency, modal };

async function main() {
  let opt;
  try {
    opt = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-bench-"));
  const rows = [];
  const progress = (...a) => console.error(...a);
  const commit = spawnSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout.trim();
  const out = { commit, date: new Date().toISOString(), cpus: os.cpus().length, loadavg_start: os.loadavg(),
    options: opt, results: {}, rows };
  const onSignal = () => {
    stopServices();
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let failed = 0;
  try {
    for (const name of ALL.filter((b) => opt.only.includes(b))) {
      progress(`== ${name}`);
      const t0 = Date.now();
      const ctx = { opt, tmp, progress, row: (r) => rows.push(r) };
      try {
        out.results[name] = await BENCHES[name](ctx);
      } catch (e) {
        failed++;
        out.results[name] = { error: String(e.stack || e) };
        progress(`bench ${name} failed: ${e.stack || e}`);
        rows.push({ bench: name, figure: "FAILED (see above)", value: NaN, baseline: "", base: NaN, ratio: NaN, target: "", note: String(e.message).slice(0, 80) });
      }
      progress(`== ${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    stopServices();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  out.loadavg_end = os.loadavg();
  const clean = JSON.parse(JSON.stringify(out, (k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
  fs.mkdirSync(path.dirname(opt.json), { recursive: true });
  fs.writeFileSync(opt.json, JSON.stringify(clean, null, 2) + "\n");
  console.log(`\nlabbox ${commit}, ${out.cpus} CPUs, load ${out.loadavg_start.map((x) => x.toFixed(1)).join(" ")} at the start, ` +
    `${out.loadavg_end.map((x) => x.toFixed(1)).join(" ")} at the end. Ratios: labbox / baseline, same run.`);
  console.log(table(["bench", "figure", "labbox", "baseline", "value", "ratio", "target", "notes"],
    rows.map((r) => [r.bench, r.figure, fmt(r.value, 2), r.baseline, fmt(r.base, 2),
      Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : "", r.target, r.note || ""])));
  console.log(`\nJSON: ${opt.json}`);
  process.exit(failed ? 1 : 0);
}

main();
