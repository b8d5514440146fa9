// bench/api: figures for the HTTP API's status reads and uploads (a benchmark: it prints, it
// asserts nothing about speed; it fails only if the stack misbehaves).
//   node scripts/bench/api.mjs [--duration S] [--connections C] [--wrk-threads T] [--runs N]
//        [--sizes MiB,MiB,...] [--only reads|uploads] [--json]
// 1. reads: wrk (keepalive, C connections) through nginx on GET /api/jobs/<id> (a finished job),
//    GET /api/health and GET /api/jobs/<id>/logs?format=ndjson (~1000 lines); baseline: a bench
//    nginx serving a static copy of each answer's body (same bytes), and the product nginx's
//    /favicon.svg as a check that both nginx configs serve alike. req/s, p50/p99, ratio.
// 2. uploads: POST /api/jobs with one CSV file of each size (curl, median of N); the peak RSS
//    of `labbox serve` during each upload; baselines: the bench nginx discarding the same body
//    (`return 204`) and spooling it to disk (WebDAV PUT, the same client_body settings).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TERMINAL, TEST_AGENT, freePort, sleep, startStack, stopServices, upload, waitFor }
  from "../../tests/integration/harness.mjs";

const MiB = 1 << 20;
const DEFAULT_MAX_FILE = 5 * MiB; /* api.md: max_file_bytes default */
const DEFAULT_MAX_JOB = 50 * MiB;

function parseArgs(argv) {
  const o = { duration: 5, connections: 32, wrkThreads: 2, runs: 3, sizes: [1, 5, 50, 200],
    only: null, json: false };
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
    if (a === "--duration") o.duration = Math.max(1, Math.round(num(a, v())));
    else if (a === "--connections") o.connections = Math.round(num(a, v()));
    else if (a === "--wrk-threads") o.wrkThreads = Math.round(num(a, v()));
    else if (a === "--runs") o.runs = Math.round(num(a, v()));
    else if (a === "--sizes") o.sizes = v().split(",").map((s) => num("--sizes", s));
    else if (a === "--only") o.only = v();
    else if (a === "--json") o.json = true;
    else if (a === "-h" || a === "--help") {
      const src = fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
      process.stdout.write(src.slice(0, 11).map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.only && !["reads", "uploads"].includes(o.only)) throw new Error("--only takes reads or uploads");
  if (o.wrkThreads > o.connections) throw new Error("--wrk-threads must not exceed --connections");
  return o;
}

let opt;
try {
  opt = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`bench-api: ${e.message} (--help shows the flags)`);
  process.exit(2);
}
const say = (...a) => (opt.json ? console.error : console.log)(...a);
const progress = (...a) => console.error(...a);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : "-");
const ratio = (a, b) => (b > 0 ? a / b : NaN);

function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

// The bench nginx: static copies of the API's answers, a discarding and a spooling upload
// location. Same worker count, sendfile, access log and client_body settings as
// nginx/nginx.conf.template and locations.conf.template (the product config stays untouched).
async function startBenchNginx(dir, maxBody) {
  const port = await freePort();
  for (const d of ["static", "spool", "client_body"]) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const user = process.getuid?.() === 0 ? "user root root;" : "";
  fs.writeFileSync(path.join(dir, "nginx.conf"), `# bench-api's own nginx (baselines only).
${user}
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    client_body_temp_path ${dir}/client_body;
    server {
        listen 127.0.0.1:${port};
        location /static/ {
            alias ${dir}/static/;
        }
        location = /discard {
            client_max_body_size ${maxBody};
            client_body_buffer_size 128k;
            return 204;
        }
        location /spool/ {
            client_max_body_size ${maxBody};
            client_body_buffer_size 128k;
            alias ${dir}/spool/;
            dav_methods PUT;
        }
    }
}
`);
  const child = spawn("nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")],
    { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const url = `http://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, "static/ping"), "ok\n");
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/static/ping`)).ok) return { url, dir, child };
    } catch { /* not yet */ }
    if (child.exitCode !== null) break;
    await sleep(25);
  }
  child.kill("SIGTERM");
  throw new Error(`bench nginx did not start: ${err}`);
}

// wrk: req/s and latency percentiles (ms) of one URL.
const UNIT_MS = { us: 1e-3, ms: 1, s: 1000, m: 60000 };
function latencyMs(s) {
  const m = s.match(/^([\d.]+)(us|ms|s|m)$/);
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}
async function wrk(url) {
  const args = [`-t${opt.wrkThreads}`, `-c${opt.connections}`, `-d${opt.duration}s`, "--latency", url];
  const r = await run("wrk", args);
  if (r.code !== 0) throw new Error(`wrk ${args.join(" ")} failed (${r.code}): ${r.err}${r.out}`);
  const o = r.out;
  const pick = (re) => { const m = o.match(re); return m ? m[1] : null; };
  const res = {
    requests: Number(pick(/(\d+) requests in/)),
    rps: Number(pick(/Requests\/sec:\s+([\d.]+)/)),
    p50_ms: latencyMs(pick(/^\s+50%\s+(\S+)/m)),
    p99_ms: latencyMs(pick(/^\s+99%\s+(\S+)/m)),
    non2xx: Number(pick(/Non-2xx or 3xx responses: (\d+)/) || 0),
    socket_errors: 0,
  };
  const se = o.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  if (se) res.socket_errors = se.slice(1).reduce((a, b) => a + Number(b), 0);
  if (!Number.isFinite(res.rps) || !Number.isFinite(res.p50_ms)) throw new Error(`cannot read wrk's output:\n${o}`);
  return res;
}

async function body(url) {
  const res = await fetch(url);
  const buf = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${buf.toString().slice(0, 300)}`);
  return buf;
}

// Part 1: status reads.
async function reads(stack, bench) {
  progress("reads: one job printing 1000 lines ...");
  const up = await upload(stack, [{ name: "data.csv", data: "subject,score\n1,2.5\n2,3.5\n", type: "text/csv" }],
    { mode: "ok", lines: 1000 });
  if (up.status !== 201) throw new Error(`upload: ${up.status} ${JSON.stringify(up.body)}`);
  const id = up.body.id;
  const job = await waitFor(stack, id);
  if (job.state !== "succeeded") throw new Error(`the log job ended ${job.state}: ${JSON.stringify(job)}`);

  const api = {
    job: `/api/jobs/${id}`,
    health: "/api/health",
    logs: `/api/jobs/${id}/logs?format=ndjson`,
  };
  const sizes = {};
  for (const [k, p] of Object.entries(api)) {
    const b = await body(stack.url + p);
    sizes[k] = b.length;
    fs.writeFileSync(path.join(bench.dir, "static", k), b);
  }
  const logLines = fs.readFileSync(path.join(bench.dir, "static", "logs"), "utf8").split("\n").filter(Boolean).length;
  const favicon = (await body(`${stack.url}/favicon.svg`)).length;

  const cases = [
    { name: "GET /favicon.svg (product nginx)", url: `${stack.url}/favicon.svg`, bytes: favicon, check: true },
    { name: "GET /api/jobs/<id>", url: stack.url + api.job, bytes: sizes.job, base: "job" },
    { name: "GET /api/health", url: stack.url + api.health, bytes: sizes.health, base: "health" },
    { name: `GET /api/jobs/<id>/logs?format=ndjson (${logLines} lines)`, url: stack.url + api.logs,
      bytes: sizes.logs, base: "logs" },
  ];
  const rows = [];
  const out = [];
  for (const c of cases) {
    let baseline = null;
    if (c.base) {
      progress(`reads: wrk ${opt.duration}s static copy of ${c.name} (${c.bytes} bytes) ...`);
      baseline = await wrk(`${bench.url}/static/${c.base}`);
    }
    progress(`reads: wrk ${opt.duration}s ${c.name} ...`);
    const r = await wrk(c.url);
    const o = { name: c.name, bytes: c.bytes, ...r, baseline,
      rps_ratio: baseline ? ratio(r.rps, baseline.rps) : null,
      p50_ratio: baseline ? ratio(r.p50_ms, baseline.p50_ms) : null,
      p99_ratio: baseline ? ratio(r.p99_ms, baseline.p99_ms) : null };
    out.push(o);
    rows.push([c.name, c.bytes, f1(r.rps), f3(r.p50_ms), f3(r.p99_ms), r.non2xx + r.socket_errors,
      baseline ? f3(o.rps_ratio) : "", baseline ? f2(o.p50_ratio) : "", baseline ? f2(o.p99_ratio) : ""]);
    if (baseline) {
      rows.push([`  baseline: the same bytes, static`, c.bytes, f1(baseline.rps), f3(baseline.p50_ms),
        f3(baseline.p99_ms), baseline.non2xx + baseline.socket_errors, "", "", ""]);
    }
    if (r.non2xx || r.socket_errors) {
      progress(`reads: WARNING ${c.name}: ${r.non2xx} non-2xx answers, ${r.socket_errors} socket errors`);
    }
  }
  say(`\nStatus reads: wrk -t${opt.wrkThreads} -c${opt.connections} -d${opt.duration}s --latency through nginx (keepalive).`);
  say("Baseline: the same body as a static file from a bench nginx in this run; ratios are labbox / baseline.");
  say(table(["request", "bytes", "req/s", "p50 ms", "p99 ms", "errors", "req/s ratio", "p50 ratio", "p99 ratio"], rows));
  return { job_id: id, log_lines: logLines, cases: out };
}

// A CSV file of exactly `bytes` bytes: 32-byte lines (a header, then numbered rows).
function makeCsv(file, bytes) {
  const block = Buffer.alloc(MiB);
  const header = "subject,condition,score,weights\n";
  for (let off = 0, i = 0; off < MiB; off += 32, i++) {
    const line = off === 0 ? header
      : `${String(i).padStart(6, "0")},${i % 2 ? "treated" : "control"},${(50 + (i % 97) * 0.5).toFixed(1).padStart(5, "0")},${(i % 1000 / 1000).toFixed(8)}\n`;
    if (line.length !== 32) throw new Error(`csv line of ${line.length} bytes: ${line}`);
    block.write(line, off, "latin1");
  }
  const fd = fs.openSync(file, "w");
  try {
    for (let left = bytes; left > 0; left -= MiB) {
      /* Later blocks repeat the first without its header; a last partial block ends in "\n". */
      const b = Buffer.from(block);
      if (left !== bytes) b.write(`${"0".repeat(6)},control,050.0,0.00000000\n`, 0, "latin1");
      const n = Math.min(left, MiB);
      if (n < MiB) b.write("\n", n - 1, "latin1");
      fs.writeSync(fd, b, 0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

const mb = (kb) => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : "-");
const mem0 = (out) => out.some((o) => o.serve_mem_runs.some((m) => !m.hwm_reset));

function memKb(pid, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

// curl one upload. With `pid` (labbox serve): its VmRSS just before, its peak during the upload
// (VmHWM after a reset of the peak with clear_refs 5; if that is not permitted, the highest
// VmRSS sampled every 2 ms) and its VmRSS after; RssAnon is sampled too (the heap, not the
// mapped libraries and magic database).
async function curlUpload(args, pid) {
  const mem = { before_kb: NaN, peak_kb: NaN, after_kb: NaN, anon_before_kb: NaN, anon_peak_kb: NaN,
    anon_after_kb: NaN, hwm_reset: false };
  let sampled = NaN, timer = null;
  if (pid) {
    try { fs.writeFileSync(`/proc/${pid}/clear_refs`, "5"); mem.hwm_reset = true; } catch { /* not permitted */ }
    mem.before_kb = sampled = memKb(pid, "VmRSS");
    mem.anon_before_kb = mem.anon_peak_kb = memKb(pid, "RssAnon");
    timer = setInterval(() => {
      sampled = Math.max(sampled, memKb(pid, "VmRSS"));
      mem.anon_peak_kb = Math.max(mem.anon_peak_kb, memKb(pid, "RssAnon"));
    }, 2);
  }
  const r = await run("curl", ["-sS", "-H", "Expect:", "-w", "\n%{http_code} %{size_upload} %{time_total}", ...args]);
  if (timer) {
    clearInterval(timer);
    mem.peak_kb = mem.hwm_reset ? memKb(pid, "VmHWM") : Math.max(sampled, memKb(pid, "VmRSS"));
    mem.after_kb = memKb(pid, "VmRSS");
    mem.anon_after_kb = memKb(pid, "RssAnon");
    mem.anon_peak_kb = Math.max(mem.anon_peak_kb, mem.anon_after_kb);
  }
  if (r.code !== 0) throw new Error(`curl ${args.join(" ")}: exit ${r.code} ${r.err}`);
  const lines = r.out.split("\n");
  const [status, sent, total] = lines.pop().split(" ").map(Number);
  return { status, sent, seconds: total, body: lines.join("\n"), mem: pid ? mem : null };
}

async function uploads(stacks, bench, tmp) {
  const rows = [];
  const out = [];
  for (const mib of opt.sizes) {
    const bytes = Math.round(mib * MiB);
    const stack = bytes <= DEFAULT_MAX_FILE ? stacks.small : stacks.big;
    const file = path.join(tmp, `data-${mib}.csv`);
    progress(`uploads: ${mib} MiB (${bytes} bytes) x ${opt.runs} ...`);
    makeCsv(file, bytes);
    const form = ["-F", `files=@${file};type=text/csv`, "-F", 'params={"mode":"ok"}'];
    const lab = [], discard = [], spool = [], mem = [];
    for (let i = 0; i < opt.runs; i++) {
      /* Each run: labbox, then the two baselines, so drift hits all three alike. */
      const r = await curlUpload([...form, `${stack.url}/api/jobs`], stack.serve.pid);
      let job = null;
      try { job = JSON.parse(r.body); } catch { /* checked below */ }
      if (r.status !== 201 || !job?.id) throw new Error(`upload of ${mib} MiB: ${r.status} ${r.body.slice(0, 300)}`);
      if (job.inputs?.[0]?.size !== bytes) throw new Error(`labbox stored ${job.inputs?.[0]?.size} bytes, not ${bytes}`);
      lab.push(r.seconds);
      mem.push(r.mem);
      /* The job copies the file into its sandbox; let it end so it does not load the next run. */
      const end = await waitFor(stack, job.id, (j) => TERMINAL.includes(j.state), 120000);
      if (end.state !== "succeeded") throw new Error(`the ${mib} MiB job ended ${end.state}: ${JSON.stringify(end)}`);

      const d = await curlUpload([...form, `${bench.url}/discard`]);
      if (d.status !== 204 || d.sent < bytes) throw new Error(`discard baseline: ${d.status}, ${d.sent} bytes sent`);
      discard.push(d.seconds);
      const s = await curlUpload(["-T", file, `${bench.url}/spool/f`]);
      if (![201, 204].includes(s.status) || s.sent !== bytes) throw new Error(`spool baseline: ${s.status}, ${s.sent} bytes sent`);
      spool.push(s.seconds);
      fs.rmSync(path.join(bench.dir, "spool/f"), { force: true });
    }
    fs.rmSync(file, { force: true });
    const o = {
      mib, bytes, runs: opt.runs,
      config: stack === stacks.small ? "default limits" : "raised limits",
      labbox_s: median(lab), labbox_all_s: lab,
      discard_s: median(discard), spool_s: median(spool),
      labbox_mib_s: bytes / MiB / median(lab),
      discard_mib_s: bytes / MiB / median(discard),
      spool_mib_s: bytes / MiB / median(spool),
      ratio_discard: ratio(median(lab), median(discard)),
      ratio_spool: ratio(median(lab), median(spool)),
      /* labbox serve, over the runs: VmRSS before, the highest peak, the largest rise during one
         upload (peak - before), VmRSS after the last; RssAnon likewise. */
      serve_rss_before_kb: median(mem.map((m) => m.before_kb)),
      serve_rss_peak_kb: Math.max(...mem.map((m) => m.peak_kb)),
      serve_rss_rise_kb: Math.max(...mem.map((m) => m.peak_kb - m.before_kb)),
      serve_rss_after_kb: mem.at(-1).after_kb,
      serve_anon_rise_kb: Math.max(...mem.map((m) => m.anon_peak_kb - m.anon_before_kb)),
      serve_anon_after_kb: mem.at(-1).anon_after_kb,
      serve_mem_runs: mem,
    };
    out.push(o);
    rows.push([`${mib} MiB`, o.config, f3(o.labbox_s), f1(o.labbox_mib_s), f3(o.discard_s), f1(o.discard_mib_s),
      f3(o.spool_s), f1(o.spool_mib_s), f2(o.ratio_discard), f2(o.ratio_spool),
      ...[o.serve_rss_before_kb, o.serve_rss_peak_kb, o.serve_rss_rise_kb, o.serve_rss_after_kb].map(mb)]);
  }
  say(`\nUploads: POST /api/jobs with one CSV file through nginx (curl, median of ${opt.runs} runs).`);
  say("Baselines: a bench nginx with the same client_body settings; discard = POST of the same form to" +
    ' "return 204",\nspool = PUT of the file (WebDAV: nginx writes it to disk). /discard, /spool = labbox time / baseline time.');
  say("RSS of labbox serve (MiB): before an upload (median), peak during one (VmHWM reset before each)," +
    " largest rise\nduring one upload (peak - before), after the last upload.");
  say(table(["file", "labbox config", "labbox s", "MiB/s", "discard s", "MiB/s", "spool s", "MiB/s",
    "/discard", "/spool", "RSS before", "peak", "rise", "after"], rows));
  if (mem0(out)) say("(peak RSS sampled every 2 ms: resetting VmHWM was not permitted)");
  return { sizes: out };
}

async function main() {
  for (const tool of ["wrk", "curl", "nginx"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is missing (scripts/bootstrap --bench)`);
    }
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-bench-api-"));
  const maxMiB = Math.max(...opt.sizes);
  const bigLimit = Math.ceil(maxMiB + 1) * MiB;
  const stacks = {};
  let bench = null;
  const res = { duration_s: opt.duration, connections: opt.connections, wrk_threads: opt.wrkThreads,
    cpus: os.cpus().length };
  const stop = async () => {
    bench?.child.kill("SIGTERM");
    for (const s of Object.values(stacks)) await s.stop().catch(() => {});
    stopServices();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = () => { stop().finally(() => process.exit(130)); };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const common = { agentDir: TEST_AGENT, agentCommand: "python3 agent.py" };
    progress("starting nginx + labbox serve (default upload limits) ...");
    stacks.small = await startStack({ ...common, config: { max_queue: 100000, max_concurrent: 2 } });
    bench = await startBenchNginx(path.join(tmp, "nginx"), `${Math.ceil(maxMiB + 8)}m`);
    if (opt.only !== "uploads") res.reads = await reads(stacks.small, bench);
    if (opt.only !== "reads") {
      if (opt.sizes.some((m) => m * MiB > DEFAULT_MAX_FILE)) {
        progress(`starting a second stack with max_file_bytes = max_job_bytes = ${bigLimit} ...`);
        stacks.big = await startStack({ ...common, maxBody: `${Math.ceil(maxMiB + 8)}m`,
          config: { max_queue: 100000, max_concurrent: 2, max_file_bytes: bigLimit,
            max_job_bytes: Math.max(bigLimit, DEFAULT_MAX_JOB) } });
      }
      res.uploads = await uploads(stacks, bench, tmp);
    }
  } finally {
    await stop();
  }
  if (opt.json) process.stdout.write(JSON.stringify(res, null, 2) + "\n");
}

main().catch((e) => {
  console.error(`bench-api: ${e.stack || e.message}`);
  process.exit(1);
});
