// bench/modal: the same Modal job through the official JS SDK (modal@0.11.1) and through
// labbox, against the fake Modal server (tests/fake-modal); wall time and RPCs per method.
// A benchmark: it prints figures and asserts nothing about them (it only refuses to time a
// run whose job did not do its work). Run it through scripts/bench --only modal, which builds first.
//
// The job (docs/modal.md#one-job-step-by-step): app -> image -> idle sandbox tagged with the job ->
// upload the work dir (agent.py, inputs/experiment.csv, inputs/params.json, outputs/) as a
// tar through exec stdin (`tar -xf - -C /workspace`) -> the agent exec (`python3 agent.py`,
// tests/integration/agents, params {"mode":"ok","lines":N}: N+2 stdout lines, 1 stderr line,
// 3 output files) with stdout/stderr streamed live -> wait -> download
// `tar -cf - -C /workspace outputs` and unpack it locally -> terminate.
//
// Sides: "sdk-v1" and "sdk-v2" (a fresh ModalClient per job, MODAL_SANDBOX_V2=0/1; labbox
// uses V1), "labbox-http" (POST /api/jobs to nginx + labbox serve with backend=modal, until
// the job succeeded and its sandbox was terminated), "labbox-backend" (build/bench_modal_backend:
// the C backend alone, one process per job like `labbox supervise`, no HTTP and no queue, all
// of them with one data dir, as the supervisors of one labbox share theirs).
// RPCs are shown for the first job of a side (its warm-up: labbox then fetches the auth token and
// looks up the app, the builder version and the image, which it keeps in <data_dir>/modal) and
// for the later ones (the median of the timed runs); docs/modal.md#one-job-at-a-glance.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { backendService, startStack, stopServices, BUILD, ROOT, TEST_AGENT, CSV, sleep } from "../../tests/integration/harness.mjs";

const USAGE = `usage: node scripts/benchmarks/modal.mjs [--runs N] [--lines N] [--sides a,b,...] [--json]
  --runs N     timed runs per side, after one warm-up (default 5); the figure is the median
  --lines N    stdout lines the agent prints (default 200)
  --sides LIST sdk-v1,sdk-v2,labbox-http,labbox-backend (default: all)
  --json       print one JSON object instead of the table`;

const ALL_SIDES = ["sdk-v1", "sdk-v2", "labbox-http", "labbox-backend"];
const opts = { runs: 5, lines: 200, json: false, sides: ALL_SIDES };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const num = () => {
    const v = Number(argv[++i]);
    if (!Number.isInteger(v) || v < 1) die(`${a} needs a positive integer\n${USAGE}`);
    return v;
  };
  if (a === "--runs") opts.runs = num();
  else if (a === "--lines") opts.lines = num();
  else if (a === "--json") opts.json = true;
  else if (a === "--sides") {
    opts.sides = String(argv[++i] || "").split(",").filter(Boolean);
    for (const s of opts.sides) if (!ALL_SIDES.includes(s)) die(`unknown side ${s}\n${USAGE}`);
  } else if (a === "-h" || a === "--help") {
    console.log(USAGE);
    process.exit(0);
  } else die(`unknown argument ${a}\n${USAGE}`);
}

function die(msg) {
  console.error(`bench-modal: ${msg}`);
  process.exit(2);
}
const note = (msg) => { if (!opts.json) console.error(msg); };

const FAKE_DIR = path.join(ROOT, "tests/fake-modal");
const sdkPkg = path.join(FAKE_DIR, "node_modules/modal/package.json");
if (!fs.existsSync(sdkPkg) || JSON.parse(fs.readFileSync(sdkPkg, "utf8")).version !== "0.11.1")
  die("tests/fake-modal/node_modules lacks modal@0.11.1: run `npm ci --prefix tests/fake-modal`");
const C_DRIVER = path.join(BUILD, "bench/bench_modal_backend");

const IMAGE = "python:3.12-slim";          // labbox's default modal_image
const WALL_TIMEOUT_S = 600;                // labbox's default wall_timeout
const PARAMS = JSON.stringify({ mode: "ok", lines: opts.lines });
const WANT = { exitCode: 0, stdoutLines: opts.lines + 2, stderrLines: 1, files: 3 };

/* ---------------------------------------------------------------- tar, in process */

function tarHeader(name, size, type, mode) {
  const h = Buffer.alloc(512);
  const put = (off, len, s) => h.write(s, off, Math.min(len, Buffer.byteLength(s)), "utf8");
  const oct = (off, len, n) => put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  if (Buffer.byteLength(name) > 100) throw new Error(`tar: name too long: ${name}`);
  put(0, 100, name);
  oct(100, 8, mode);
  oct(108, 8, 0);
  oct(116, 8, 0);
  oct(124, 12, size);
  oct(136, 12, Math.floor(Date.now() / 1000));
  h.fill(0x20, 148, 156);
  put(156, 1, type);
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

// tarDir: a ustar archive of dir's tree, paths relative ("inputs/x.csv").
function tarDir(dir) {
  const parts = [];
  const walk = (rel) => {
    for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        parts.push(tarHeader(`${r}/`, 0, "5", 0o755));
        walk(r);
      } else if (ent.isFile()) {
        const data = fs.readFileSync(path.join(dir, r));
        parts.push(tarHeader(r, data.length, "0", 0o644), data, Buffer.alloc((512 - (data.length % 512)) % 512));
      }
    }
  };
  walk("");
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// untar: unpack regular files and directories of a ustar/GNU archive under dest; returns the
// regular files written. Refuses absolute and ".." paths; skips links and specials.
function untar(buf, dest) {
  let off = 0, files = 0, longName = null;
  const str = (o, l) => { const s = buf.subarray(o, o + l); const z = s.indexOf(0); return s.subarray(0, z < 0 ? l : z).toString("utf8"); };
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(off + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(h[156] || 0x30);
    const prefix = str(off + 345, 155);
    let name = longName ?? (prefix ? `${prefix}/${str(off, 100)}` : str(off, 100));
    longName = null;
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") { longName = str(off - Math.ceil(size / 512) * 512, size); continue; }
    name = name.replace(/^\.\//, "").replace(/\/+$/, "");
    if (!name || name.startsWith("/") || name.split("/").includes("..")) throw new Error(`untar: refusing ${name}`);
    const p = path.join(dest, name);
    if (type === "5") fs.mkdirSync(p, { recursive: true });
    else if (type === "0") {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, body);
      files++;
    }
  }
  return files;
}

/* ---------------------------------------------------------------- helpers */

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const countLines = (chunks) => chunks.reduce((n, c) => n + c.reduce((k, b) => k + (b === 10 ? 1 : 0), 0), 0);

// stageWork: the directory labbox stages for a job: the agent dir, inputs/, empty outputs/.
function stageWork(root) {
  const work = path.join(root, "work");
  fs.cpSync(TEST_AGENT, work, { recursive: true });
  fs.mkdirSync(path.join(work, "inputs"));
  fs.mkdirSync(path.join(work, "outputs"));
  fs.writeFileSync(path.join(work, "inputs/experiment.csv"), CSV);
  fs.writeFileSync(path.join(work, "inputs/params.json"), PARAMS);
  return work;
}

function agentEnv(jobId, backend) {
  return {
    LABBOX_JOB_ID: jobId, LABBOX_BACKEND: backend,
    LABBOX_INPUT_DIR: "/workspace/inputs", LABBOX_OUTPUT_DIR: "/workspace/outputs",
    PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/tmp", LANG: "C.UTF-8", PYTHONUNBUFFERED: "1",
  };
}

function checkWork(side, got) {
  for (const k of Object.keys(WANT)) {
    if (got[k] !== WANT[k]) throw new Error(`${side}: the job did not do its work: ${k} = ${got[k]}, expected ${WANT[k]} (${JSON.stringify(got)})`);
  }
}

/* ---------------------------------------------------------------- the fake */

let fake; // { admin, env }
async function admin(method, p) {
  const res = await fetch(fake.admin + p, { method });
  if (!res.ok) throw new Error(`fake admin ${method} ${p}: ${res.status}`);
  return res.json();
}
const resetStats = () => admin("POST", "/stats/reset");
const getStats = async () => (await admin("GET", "/stats")).rpcs;

/* ---------------------------------------------------------------- side A: the official SDK */

let modal;
let seq = 0;
async function sdkJob(v2) {
  const jobId = `bench-sdk-${process.pid}-${++seq}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-modal-sdk-"));
  const work = stageWork(tmp);
  const outDir = path.join(tmp, "collected");
  fs.mkdirSync(outDir);
  const t0 = performance.now();
  const tarBytes = tarDir(work);
  process.env.MODAL_SANDBOX_V2 = v2 ? "1" : "0"; // read by the constructor
  const mc = new modal.ModalClient();
  let sb;
  const got = {}, mark = {};
  const at = (k) => { mark[k] = performance.now() - t0; };
  try {
    const app = await mc.apps.fromName("labbox", { createIfMissing: true });
    const image = mc.images.fromRegistry(IMAGE);
    sb = await mc.sandboxes.create(app, image, {
      tags: { labbox: "1", job: jobId }, timeoutMs: (WALL_TIMEOUT_S + 900) * 1000,
      cpu: 1, memoryMiB: 1024, blockNetwork: true,
    });
    at("sandbox_created");
    // Upload: the work dir as a tar through exec stdin. Like labbox, read the exec's stderr
    // only when it failed (the SDK opens a stdio stream only when it is read).
    const up = await sb.exec(["sh", "-c", "mkdir -p /workspace && tar -xf - -C /workspace"], { mode: "binary", stdout: "ignore" });
    for (let o = 0; o < tarBytes.length; o += 1 << 20) await up.stdin.writeBytes(tarBytes.subarray(o, o + (1 << 20)));
    await up.stdin.close();
    const upCode = await up.wait();
    if (upCode !== 0) throw new Error(`upload exec exited ${upCode}: ${Buffer.from(await up.stderr.readBytes()).toString()}`);
    at("uploaded");
    // The agent, both streams consumed live, chunk by chunk.
    const ag = await sb.exec(["python3", "agent.py"], {
      mode: "binary", workdir: "/workspace", env: agentEnv(jobId, "modal"), timeoutMs: WALL_TIMEOUT_S * 1000,
    });
    const drain = async (stream) => {
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      return chunks;
    };
    const [outChunks, errChunks] = await Promise.all([drain(ag.stdout), drain(ag.stderr)]);
    got.exitCode = await ag.wait();
    got.stdoutLines = countLines(outChunks);
    got.stderrLines = countLines(errChunks);
    at("agent_exited");
    // Download /workspace/outputs and unpack it here (stderr read only on failure, as above).
    const dl = await sb.exec(["tar", "-cf", "-", "-C", "/workspace", "outputs"], { mode: "binary" });
    const tarOut = await dl.stdout.readBytes();
    const dlCode = await dl.wait();
    if (dlCode !== 0) throw new Error(`download exec exited ${dlCode}: ${Buffer.from(await dl.stderr.readBytes()).toString()}`);
    got.files = untar(Buffer.from(tarOut.buffer, tarOut.byteOffset, tarOut.length), outDir);
    at("downloaded");
    await sb.terminate();
    sb = null;
  } finally {
    if (sb) await sb.terminate().catch(() => {});
    mc.close();
  }
  const ms = performance.now() - t0;
  fs.rmSync(tmp, { recursive: true, force: true });
  checkWork(v2 ? "sdk-v2" : "sdk-v1", got);
  return { ms, detail: mark };
}

/* ---------------------------------------------------------------- side B: labbox */

let stack;
// httpJob: upload, follow the job's event stream (its log live, like the SDK side reads the
// agent's streams) to the end, then wait for the fake to see the sandbox terminated: the
// supervisor terminates it after marking the job finished, and the SDK side's time includes its
// terminate. The end time is the fake's own record of the termination.
async function httpJob() {
  const t0wall = Date.now();
  const t0 = performance.now();
  const fd = new FormData();
  fd.append("files", new Blob([CSV], { type: "text/csv" }), "experiment.csv");
  fd.append("params", PARAMS);
  const res = await fetch(`${stack.url}/api/jobs`, { method: "POST", body: fd });
  const created = await res.json();
  if (res.status !== 201) throw new Error(`labbox-http: upload answered ${res.status}: ${JSON.stringify(created)}`);
  const id = created.id;
  const ev = await fetch(`${stack.url}/api/jobs/${id}/events`);
  if (!ev.ok) throw new Error(`labbox-http: events answered ${ev.status}`);
  const lines = { stdout: 0, stderr: 0 };
  let job = created, buf = "", ended = false;
  const dec = new TextDecoder();
  for await (const chunk of ev.body) {
    buf += dec.decode(chunk, { stream: true });
    let k;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, k);
      buf = buf.slice(k + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (event === "log") {
        const rec = JSON.parse(data);
        if (rec.stream in lines) lines[rec.stream]++;
      } else if (event === "state") job = JSON.parse(data);
      else if (event === "end") ended = true;
    }
    if (ended) break;
  }
  const tEnd = performance.now() - t0;
  if (job.state !== "succeeded") throw new Error(`labbox-http: job ${id} ${job.state}: ${job.reason} ${job.detail}\n${stack.log().slice(-3000)}`);
  let sb = null;
  for (let i = 0; i < 500 && !(sb && sb.finished_at); i++) {
    sb = (await admin("GET", "/state")).sandboxes.find((s) => s.tags_map?.job === id);
    if (!(sb && sb.finished_at)) await sleep(20);
  }
  if (!(sb && sb.finished_at)) throw new Error(`labbox-http: job ${id}: its sandbox was not terminated within 10 s`);
  await sleep(100); // let any trailing RPC land before the counts are read
  const outs = await (await fetch(`${stack.url}/api/jobs/${id}/outputs`)).json();
  checkWork("labbox-http", { exitCode: job.exit_code, stdoutLines: lines.stdout, stderrLines: lines.stderr, files: outs.outputs.length });
  const at = (s) => Date.parse(s) - t0wall;
  return {
    ms: sb.finished_at * 1000 - t0wall,
    detail: {
      job_created: at(job.created_at),
      sandbox_created: sb.created_at * 1000 - t0wall,
      running: at(job.started_at),
      succeeded: at(job.finished_at),
      events_end: tEnd,
    },
  };
}

let backendData; // the labbox-backend side's one data dir (its Modal store)
async function backendJob() {
  const jobId = `benchc${process.pid}x${++seq}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-modal-c-"));
  backendData ??= fs.mkdtempSync(path.join(os.tmpdir(), "bench-modal-c-data-"));
  const work = stageWork(tmp);
  const outDir = path.join(tmp, "collected");
  fs.mkdirSync(outDir);
  const env = {
    PATH: process.env.PATH, HOME: process.env.HOME || "/root",
    ...fake.env, LABBOX_BACKEND: "modal", LABBOX_DATA_DIR: backendData, LABBOX_INSTANCE: "bench-modal-c",
    LABBOX_LOG_LEVEL: "warn",
  };
  const t0 = performance.now();
  const child = spawn(C_DRIVER, [work, outDir, jobId, "python3", "agent.py"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { err += d; });
  const code = await new Promise((r) => child.on("close", r));
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`labbox-backend: bench_modal_backend exited ${code}:\n${err}`);
  const r = JSON.parse(out.trim().split("\n").pop());
  let files = 0;
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : files++; };
  walk(outDir);
  fs.rmSync(tmp, { recursive: true, force: true });
  checkWork("labbox-backend", { exitCode: r.exit_code, stdoutLines: r.stdout_lines, stderrLines: r.stderr_lines, files });
  const started = r.init_ms + r.start_ms;
  return {
    ms,
    detail: {
      // The driver's own clock starts a little after the spawn.
      started, agent_exited: started + r.run_ms, collected: started + r.run_ms + r.collect_ms,
      destroyed: r.total_ms,
    },
  };
}

/* ---------------------------------------------------------------- driver */

// measure: one warm-up per side, then opts.runs rounds of one run per side (interleaved, so a
// change in the machine's load hits every side alike); stats are reset before each run.
async function measure(sides) {
  const runs = Object.fromEntries(sides.map(([name]) => [name, []]));
  const first = {};
  for (let round = 0; round <= opts.runs; round++) {
    note(round === 0 ? "warm-up (each side's first job)" : `round ${round}/${opts.runs}`);
    for (const [name, fn] of sides) {
      await resetStats();
      const r = await fn();
      const rpcs = await getStats();
      if (round > 0) runs[name].push({ ...r, rpcs });
      else first[name] = rpcs;
    }
  }
  return sides.map(([side]) => {
    const rs = runs[side];
    const methods = new Set(rs.flatMap((r) => Object.keys(r.rpcs)));
    const rpcs = {};
    for (const m of [...methods].sort()) rpcs[m] = median(rs.map((r) => r.rpcs[m] || 0));
    const detail = {};
    for (const k of Object.keys(rs[0].detail || {})) detail[k] = median(rs.map((r) => r.detail[k]));
    const ms = rs.map((r) => r.ms);
    return {
      side,
      wall_ms: { median: median(ms), min: Math.min(...ms), max: Math.max(...ms) },
      rpcs,
      rpc_total: median(rs.map((r) => Object.values(r.rpcs).reduce((a, b) => a + b, 0))),
      first_job_rpcs: first[side],
      first_job_rpc_total: Object.values(first[side]).reduce((a, b) => a + b, 0),
      detail,
      runs: rs.map((r) => ({ ms: r.ms, rpcs: r.rpcs, detail: r.detail })),
    };
  });
}

function table(results) {
  const base = results.find((r) => r.side === "sdk-v1") || results[0];
  const labbox = results.filter((r) => r.side.startsWith("labbox"));
  const cols = results.map((r) => r.side);
  const ratioCols = labbox.map((r) => `${r.side.replace("labbox-", "")}/${base.side}`);
  const head = ["", ...cols, ...ratioCols];
  const rows = [];
  const fmt = (x) => (x === undefined ? "" : Number.isInteger(x) ? String(x) : x.toFixed(1));
  const ratio = (a, b) => (b ? (a / b).toFixed(2) : a ? "inf" : "-");
  rows.push([`wall ms (median of ${opts.runs})`, ...results.map((r) => fmt(r.wall_ms.median)), ...labbox.map((r) => ratio(r.wall_ms.median, base.wall_ms.median))]);
  rows.push(["  min..max", ...results.map((r) => `${fmt(r.wall_ms.min)}..${fmt(r.wall_ms.max)}`), ...labbox.map(() => "")]);
  rows.push(["RPCs, first job", ...results.map((r) => fmt(r.first_job_rpc_total)), ...labbox.map((r) => ratio(r.first_job_rpc_total, base.first_job_rpc_total))]);
  rows.push(["RPCs, later jobs (median)", ...results.map((r) => fmt(r.rpc_total)), ...labbox.map((r) => ratio(r.rpc_total, base.rpc_total))]);
  const methods = [...new Set(results.flatMap((r) => Object.keys(r.rpcs)))].sort();
  for (const m of methods) {
    rows.push([`  ${m}`, ...results.map((r) => fmt(r.rpcs[m] || 0)), ...labbox.map((r) => ratio(r.rpcs[m] || 0, base.rpcs[m] || 0))]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log("\nphases, ms from the job's start (medians):");
  for (const r of results) {
    const d = Object.entries(r.detail).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
    if (d) console.log(`${r.side.padEnd(14)} ${d}`);
  }
}

async function main() {
  let sides = opts.sides;
  if (process.env.BENCH_MODAL_NO_BACKEND === "1") sides = sides.filter((s) => s !== "labbox-backend");
  if (sides.length === 0) die("no side left to time");
  if (sides.includes("labbox-backend") && !fs.existsSync(C_DRIVER)) die(`${C_DRIVER} is missing (build the bench_modal_backend target)`);
  if (sides.includes("labbox-http") && !fs.existsSync(path.join(BUILD, "labbox"))) die(`${BUILD}/labbox is missing`);
  const svc = await backendService("modal"); // the fake, shared by every side
  fake = { admin: svc.admin, env: svc.env };
  Object.assign(process.env, svc.env, { MODAL_CONFIG_PATH: "/nonexistent/modal.toml", MODAL_LOGLEVEL: "error" });
  modal = await import(path.join(FAKE_DIR, "node_modules/modal/dist/index.js"));
  let results;
  const t0 = performance.now();
  try {
    const fns = { "sdk-v1": () => sdkJob(false), "sdk-v2": () => sdkJob(true), "labbox-backend": backendJob, "labbox-http": httpJob };
    // labbox serve's health check asks Modal at most once a minute (an AppGetOrCreate); when that
    // lands in another side's run it shows in that run's counts, and the median per method hides it.
    if (sides.includes("labbox-http")) stack = await startStack({ backend: "modal", config: { max_concurrent: 1 } });
    results = await measure(ALL_SIDES.filter((s) => sides.includes(s)).map((s) => [s, fns[s]]));
  } finally {
    if (stack) await stack.stop();
    stopServices();
    if (backendData) fs.rmSync(backendData, { recursive: true, force: true });
  }
  const out = {
    runs: opts.runs, lines: opts.lines, node: process.version, sdk: "modal@0.11.1", build: BUILD,
    elapsed_s: (performance.now() - t0) / 1000, results,
  };
  if (opts.json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`\nSame job (agent: ${opts.lines} stdout lines, 1 stderr line, 3 output files) against the fake Modal server; ` +
      `wall time = median of ${opts.runs} runs after 1 warm-up; RPCs of the first job (the warm-up) and the median per method of the later ones (fake /stats)\n`);
    table(results);
    console.log(`\n(${out.elapsed_s.toFixed(0)} s in all)`);
  }
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, async () => {
    console.error(`bench-modal: ${sig}: stopping`);
    if (stack) await stack.stop().catch(() => {});
    stopServices();
    process.exit(130);
  });
}

main().catch((e) => {
  console.error(`bench-modal: ${e.stack || e}`);
  if (stack) stack.stop().catch(() => {});
  stopServices();
  process.exit(1);
});
