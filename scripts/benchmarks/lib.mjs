// bench/lib: what the benchmarks share: statistics, tables, child processes, wrk, and the
// bench nginx serving the baselines (static files, its own PUT spool, the bare libfcgi
// handlers of bare_fixed.c and bare_upload.c behind locations configured like labbox's).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { BUILD, ROOT, freePort, sleep } from "../../tests/integration/harness.mjs";

export const MiB = 1 << 20;

// stats: nearest-rank percentiles of a list of numbers.
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] : NaN);
  return { n: s.length, min: s.length ? s[0] : NaN, p50: q(0.5), p90: q(0.9), p99: q(0.99),
    max: s.length ? s.at(-1) : NaN };
}
export const median = (xs) => stats(xs).p50;
export const ratio = (a, b) => (b > 0 && Number.isFinite(a) ? a / b : NaN);

export function fmt(x, digits = 1) {
  if (typeof x === "string") return x;
  if (!Number.isFinite(x)) return "-";
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(digits);
}

export function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

// cpuSeconds: user + system CPU time of a process so far (from /proc; NaN if gone).
export function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100; /* utime, stime in clock ticks (USER_HZ) */
  } catch {
    return NaN;
  }
}

// wrk: req/s and latency percentiles (ms) of one URL; script: a Lua file (for POSTs).
const UNIT_MS = { us: 1e-3, ms: 1, s: 1000, m: 60000 };
const latencyMs = (s) => {
  const m = s?.match(/^([\d.]+)(us|ms|s|m)$/);
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
};
export async function wrk(url, { threads = 2, connections = 32, duration = 5, script = null } = {}) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${duration}s`, "--latency", ...(script ? ["-s", script] : []), url];
  const r = await run("wrk", args);
  if (r.code !== 0) throw new Error(`wrk ${args.join(" ")} failed (${r.code}): ${r.err}${r.out}`);
  const o = r.out;
  const pick = (re) => o.match(re)?.[1] ?? null;
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

// wrkPost: a Lua script for wrk that POSTs body with contentType.
export function wrkPostScript(file, body, contentType) {
  const lua = (s) => JSON.stringify(s); /* a JSON string is a valid Lua string for ASCII */
  fs.writeFileSync(file, `wrk.method = "POST"\nwrk.body = ${lua(body)}\nwrk.headers["Content-Type"] = ${lua(contentType)}\n`);
  return file;
}

// multipart: a multipart/form-data body with files [{name, data, type}] and optional params.
export function multipart(files, params) {
  const boundary = "----labboxbench" + Math.random().toString(16).slice(2);
  const parts = [];
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${f.name}"\r\n` +
      `Content-Type: ${f.type || "application/octet-stream"}\r\n\r\n`), Buffer.from(f.data), Buffer.from("\r\n"));
  }
  if (params !== undefined) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n${JSON.stringify(params)}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

// post: one POST with node:http (keep-alive agent); resolves {status, ms, body}.
export function post(url, body, contentType, agent) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(url, { method: "POST", agent, headers: { "Content-Type": contentType, "Content-Length": body.length } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => { text += d; });
        res.on("end", () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, body: text }));
      });
    req.on("error", reject);
    req.end(body);
  });
}

// A bare libfcgi handler (bench_fcgi_fixed or bench_fcgi_upload) on a unix socket.
export async function startBare(kind, sock, arg) {
  const exe = path.join(BUILD, "bench", `bench_fcgi_${kind}`);
  if (!fs.existsSync(exe)) throw new Error(`${exe} is missing (build the bench_fcgi_${kind} target)`);
  const child = spawn(exe, [sock, arg, "16"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind}: did not listen: ${out}`)), 10000);
    const on = (d) => {
      out += d;
      if (out.includes("LISTENING")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", on);
    child.stderr.on("data", on);
    child.on("exit", (code) => reject(new Error(`${kind} exited ${code}: ${out}`)));
  });
  return { child, stop: () => child.kill("SIGKILL") };
}

// The bench nginx: same worker count, PCRE JIT, sendfile, access log (labbox's format, which
// writes job ids as <id>: render-nginx's http.conf, its zone and format named "bench") and
// FastCGI parameters as nginx/*.template. Locations: /static/ (files), /spool/ (WebDAV PUT:
// nginx's own spool), /bare/read (the fixed-bytes handler, set up like labbox's /api/),
// /bare/upload (the write-through handler, set up like labbox's /api/jobs). The bare handlers
// start here too.
export async function startBenchNginx(dir, { maxBody = "256m", readBody = null } = {}) {
  for (const d of ["static", "spool", "client_body", "uploads", "fastcgi"]) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const port = await freePort();
  const user = process.getuid?.() === 0 ? "user root root;" : "";
  const fcgiConf = path.join(ROOT, "nginx/fastcgi.conf");
  const r = spawnSync(path.join(ROOT, "scripts/render-nginx"), ["--name", "bench", path.join(dir, "snippet")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`render-nginx: ${r.stderr}`);
  fs.writeFileSync(path.join(dir, "nginx.conf"), `# scripts/bench's own nginx (baselines only).
${user}
worker_processes auto;
pcre_jit on;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 9000; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    include ${dir}/snippet/http.conf;
    access_log ${dir}/access.log bench;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    client_body_temp_path ${dir}/client_body;
    fastcgi_temp_path ${dir}/fastcgi;
    server {
        listen 127.0.0.1:${port};
        location /static/ {
            alias ${dir}/static/;
        }
        location /spool/ {
            client_max_body_size ${maxBody};
            client_body_buffer_size 128k;
            alias ${dir}/spool/;
            dav_methods PUT;
        }
        location = /bare/upload {
            client_max_body_size ${maxBody};
            client_body_buffer_size 128k;
            include ${fcgiConf};
            fastcgi_pass unix:${dir}/upload.sock;
            fastcgi_read_timeout 300s;
        }
        location /bare/ {
            client_max_body_size 64k;
            include ${fcgiConf};
            fastcgi_pass unix:${dir}/fixed.sock;
            fastcgi_read_timeout 120s;
        }
    }
}
`);
  const bodyFile = path.join(dir, "fixed-body");
  fs.writeFileSync(bodyFile, readBody || "{}\n");
  const bares = [await startBare("fixed", path.join(dir, "fixed.sock"), bodyFile),
    await startBare("upload", path.join(dir, "upload.sock"), path.join(dir, "uploads"))];
  const child = spawn("nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")],
    { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const url = `http://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, "static/ping"), "ok\n");
  const stop = () => {
    child.kill("SIGTERM");
    for (const b of bares) b.stop();
  };
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/static/ping`)).ok) {
        return { url, port, dir, child, stop, clearUploads: () => {
          for (const f of fs.readdirSync(path.join(dir, "uploads"))) fs.rmSync(path.join(dir, "uploads", f));
        } };
      }
    } catch { /* not yet */ }
    if (child.exitCode !== null) break;
    await sleep(25);
  }
  stop();
  throw new Error(`bench nginx did not start: ${err}`);
}
