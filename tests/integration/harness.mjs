// harness: starts a real labbox stack (nginx + labbox serve, and the backend's service:
// podman for docker, the fake Modal server for modal) on loopback, for node:test suites.
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BUILD = process.env.LABBOX_BUILD_DIR || path.join(ROOT, "build");
export const LABBOX = path.join(BUILD, "labbox");
export const TEST_AGENT = path.join(ROOT, "tests/integration/agents");
export const CI = process.env.CI === "true";

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}

// A missing tool: a failure under CI, a skip (exit 77 for ctest) elsewhere.
export function requireTool(ok, what) {
  if (ok) return;
  if (CI) throw new Error(`${what} is missing, and CI=true makes that a failure`);
  console.log(`SKIP: ${what} is missing`);
  process.exit(77);
}

function waitLine(child, re, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`${what}: no "${re}" within ${ms} ms:\n${buf}`)), ms);
    const on = (d) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${buf}`));
    });
  });
}

// Every answer from /api/ of a stack this process started (and of the origins given to
// validateApi) is checked against docs/openapi.yaml (openapi.mjs): fetch and node:http's
// request/get are wrapped here, so that every suite goes through it. An answer that is not as
// documented fails the test that asked: fetch throws (for an event stream, reading it does),
// and a node:http answer throws in the test's context once it has been read.
let openapi;
try {
  const { OpenApi, explain } = await import("./openapi.mjs");
  openapi = { spec: new OpenApi(), explain };
} catch (e) {
  if (e.code !== "ERR_MODULE_NOT_FOUND") throw e;
  requireTool(false, `tests/integration/node_modules (${e.message.split("\n")[0]}; scripts/bootstrap --test installs it)`);
}
const apiOrigins = new Set();
// LABBOX_TEST_OPENAPI_SEEN=FILE: append the operation and status of every answer checked to
// FILE (one per line), to see which documented answers the tests reach.
const seen = process.env.LABBOX_TEST_OPENAPI_SEEN ? [] : null;
if (seen) process.on("exit", () => fs.appendFileSync(process.env.LABBOX_TEST_OPENAPI_SEEN, seen.map((x) => `${x}\n`).join("")));

// validateApi: check the answers of the labbox at url (its origin) too.
export function validateApi(url) {
  apiOrigins.add(new URL(url).origin);
}

// checkAnswer: the check of one answer; throws the validator's message when it is not as
// documented. For a stream (body null) it returns a feed(text) that throws likewise.
export function checkAnswer({ method, url, status, headers, body = null }) {
  const r = openapi.spec.check({ method, url, status, headers, body });
  if (seen) seen.push(`${r.name} ${status}`);
  if (r.problems.length) throw new Error(openapi.explain(method, url, status, r.name, r.problems));
  if (body !== null || method === "HEAD" || !r.media?.["x-itemSchema"]) return null;
  const events = openapi.spec.events(r.media);
  return (text) => {
    const p = events.feed(text);
    if (p.length) throw new Error(openapi.explain(method, url, status, r.name, p));
  };
}

function ours(url) {
  return apiOrigins.has(url.origin) && url.pathname.startsWith("/api/");
}

const realFetch = globalThis.fetch;
globalThis.fetch = async function fetchChecked(input, init = {}) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (!ours(url)) return realFetch(input, init);
  const method = String(init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
  const res = await realFetch(input, init);
  const meta = { status: res.status, statusText: res.statusText, headers: res.headers };
  const streaming = /^text\/event-stream/i.test(res.headers.get("content-type") || "");
  let body;
  if (streaming && method !== "HEAD" && res.body) {
    const feed = checkAnswer({ method, url: url.href, status: res.status, headers: res.headers });
    const dec = new TextDecoder();
    body = res.body.pipeThrough(new TransformStream({
      transform(chunk, ctl) {
        feed?.(dec.decode(chunk, { stream: true }));
        ctl.enqueue(chunk);
      },
    }));
  } else {
    const buf = Buffer.from(await res.arrayBuffer());
    checkAnswer({ method, url: url.href, status: res.status, headers: res.headers, body: buf });
    body = [101, 204, 205, 304].includes(res.status) || method === "HEAD" ? null : buf;
  }
  const out = new Response(body, meta);
  Object.defineProperty(out, "url", { value: res.url });
  return out;
};

// The URL and method of a node:http request(url?, options?, cb?).
function httpTarget(args) {
  let url = null, opts = {};
  for (const a of args) {
    if (typeof a === "string" || a instanceof URL) url = new URL(a);
    else if (a && typeof a === "object") opts = a;
  }
  if (!url) {
    const host = opts.hostname || opts.host || "localhost";
    url = new URL(`http://${host}${opts.port ? `:${opts.port}` : ""}${opts.path || "/"}`);
  } else if (opts.path) {
    url = new URL(opts.path, url);
  }
  return { url, method: String(opts.method || "GET").toUpperCase() };
}

const realRequest = http.request;
http.request = function requestChecked(...args) {
  const req = realRequest.apply(http, args);
  const { url, method } = httpTarget(args);
  if (!ours(url) || viaSocket(args)) return req;
  // After the test's own response callback (registered first): its listeners come first, and
  // a response it paused stays paused. A failure throws in the test's async context.
  req.on("response", (res) => {
    const fail = (e) => process.nextTick(() => { throw e; });
    const check = (body) => checkAnswer({ method, url: url.href, status: res.statusCode, headers: res.headers, body });
    if (/^text\/event-stream/i.test(res.headers["content-type"] || "") && method !== "HEAD") {
      let feed;
      try { feed = check(null); } catch (e) { fail(e); return; }
      const dec = new TextDecoder();
      res.on("data", (d) => {
        try { feed?.(typeof d === "string" ? d : dec.decode(d, { stream: true })); } catch (e) { fail(e); }
      });
      return;
    }
    const chunks = [];
    res.on("data", (d) => chunks.push(Buffer.from(d)));
    res.on("end", () => { try { check(Buffer.concat(chunks)); } catch (e) { fail(e); } });
  });
  return req;
};
http.get = function getChecked(...args) {
  const req = http.request(...args);
  req.end();
  return req;
};

// watchBrowser: check the answers a Playwright browser context gets from /api/ (the frontend's
// own requests) alike; a failure throws in the test process.
export function watchBrowser(context) {
  context.on("response", async (resp) => {
    const url = new URL(resp.url());
    if (!ours(url)) return;
    const method = resp.request().method();
    let headers, body = null;
    try {
      headers = await resp.allHeaders();
      if (!/^text\/event-stream/i.test(headers["content-type"] || "") && method !== "HEAD") body = await resp.body();
    } catch {
      return; // the page went away before the answer was whole
    }
    try {
      checkAnswer({ method, url: url.href, status: resp.status(), headers, body });
    } catch (e) {
      process.nextTick(() => { throw e; });
    }
  });
  return context;
}

// A request over a unix socket (an engine's API, not labbox's) is never ours.
function viaSocket(args) {
  return args.some((a) => a && typeof a === "object" && !(a instanceof URL) && a.socketPath);
}

// Backend services, shared by every stack of one test process.
const services = {};

// podman here keeps containers on overlay over ext4, which cannot cap a writable layer
// (StorageOpt size=): the docker backend refuses to run jobs with an uncapped /workspace unless
// allowed (tests/hostile/docker.test.mjs checks that refusal).
const DOCKER_WALLS = { LABBOX_ALLOW_UNENFORCED: "disk" };

async function dockerService() {
  if (services.docker) return services.docker;
  const given = process.env.LABBOX_TEST_DOCKER_HOST;
  if (given) {
    // scripts/test started one service for the whole run.
    services.docker = {
      env: { LABBOX_DOCKER_HOST: given, LABBOX_DOCKER_IMAGE: "localhost/labbox-test:latest", ...DOCKER_WALLS },
      host: given,
      stop: () => {},
    };
    return services.docker;
  }
  const have = spawnSync("sh", ["-c", "command -v podman"]).status === 0;
  requireTool(have, "podman (the docker backend's engine)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-podman-"));
  const r = spawnSync(path.join(ROOT, "scripts/podman-service"), ["start", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`podman-service start failed:\n${r.stdout}\n${r.stderr}`);
  const host = r.stdout.trim().split("\n").pop();
  services.docker = {
    env: { LABBOX_DOCKER_HOST: host, LABBOX_DOCKER_IMAGE: "localhost/labbox-test:latest", ...DOCKER_WALLS },
    host,
    stop: () => spawnSync(path.join(ROOT, "scripts/podman-service"), ["stop", dir]),
  };
  return services.docker;
}

async function modalService() {
  if (services.modal) return services.modal;
  const dir = path.join(ROOT, "tests/fake-modal");
  requireTool(fs.existsSync(path.join(dir, "node_modules/@grpc/grpc-js")), "tests/fake-modal/node_modules (npm ci)");
  const child = spawn(process.execPath, [path.join(dir, "server.mjs")], {
    env: { ...process.env, FAKE_MODAL_TOKEN_ID: "ak-test", FAKE_MODAL_TOKEN_SECRET: "as-test" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const [, admin, port] = await waitLine(child, /ADMIN (\d+)[\s\S]*LISTENING (\d+)/, 20000, "fake modal");
  services.modal = {
    env: {
      MODAL_SERVER_URL: `http://127.0.0.1:${port}`,
      MODAL_TOKEN_ID: "ak-test",
      MODAL_TOKEN_SECRET: "as-test",
      LABBOX_MODAL_CONFIG: "/nonexistent/.modal.toml",
      // The sandbox family (1 or 2) comes from the caller's environment, for a run per family.
      ...(process.env.LABBOX_MODAL_SANDBOX_VERSION
        ? { LABBOX_MODAL_SANDBOX_VERSION: process.env.LABBOX_MODAL_SANDBOX_VERSION } : {}),
    },
    admin: `http://127.0.0.1:${admin}`,
    child,
    stop: () => child.kill("SIGTERM"),
  };
  return services.modal;
}

export async function backendService(backend) {
  if (backend === "docker") return dockerService();
  if (backend === "modal") return modalService();
  requireTool(fs.existsSync("/usr/bin/bwrap"), "bubblewrap");
  return { env: {} };
}

export function stopServices() {
  for (const s of Object.values(services)) s.stop?.();
}

// writeHtpasswd: an htpasswd file of users {name: password}, hashed by openssl (apr1).
export function writeHtpasswd(file, users) {
  const lines = Object.entries(users).map(([name, pw]) => {
    const r = spawnSync("openssl", ["passwd", "-apr1", "-stdin"], { input: pw, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl passwd: ${r.stderr}`);
    return `${name}:${r.stdout.trim()}`;
  });
  fs.writeFileSync(file, lines.join("\n") + "\n", { mode: 0o644 });
}

// startStack: a fresh data dir, nginx on a free port, labbox serve; config keys as LABBOX_*
// (opts.config), or in a file (opts.configFile, passed as --config; LABBOX_* still override it).
// opts.uploadRate: nginx's rate limit for uploads (1000r/s; benchmarks lift it); opts.serveWrap:
// a command that execs `labbox serve` (its argv before it, e.g. prlimit).
// opts.users ({name: password}): nginx signs them in (render-nginx --htpasswd) and labbox runs
// with identity = remote_user; the helpers below then sign in as their `user` argument, or as
// the first of opts.users. opts.remoteUser is render-nginx's --remote-user, and opts.serverConf
// nginx text put into the server { } before the snippet, with opts.authHeaders(user) the headers
// that sign user in there and opts.user the helpers' default user (a sign-in of the test's own).
export async function startStack(opts = {}) {
  const backend = opts.backend || process.env.LABBOX_TEST_BACKEND || "local";
  const svc = await backendService(backend);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-it-"));
  fs.chmodSync(dir, 0o711); // the sandbox user must reach sandboxes/ below it
  // opts.dataDir: an existing data dir (a small filesystem of the test's, say).
  const data = opts.dataDir || path.join(dir, "data");
  if (!opts.dataDir) fs.mkdirSync(data);
  const port = await freePort();
  const sock = path.join(data, "labbox.sock");
  const users = opts.users || null;
  const htpasswd = users ? path.join(dir, "htpasswd") : null;
  if (users) {
    writeHtpasswd(htpasswd, users);
    opts = { ...opts, config: { identity: "remote_user", ...(opts.config || {}) } };
  }
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || "/root",
    LABBOX_DATA_DIR: data,
    LABBOX_LISTEN: sock,
    LABBOX_BACKEND: backend,
    LABBOX_SANDBOX_DIR: path.join(dir, "sandboxes"),
    LABBOX_AGENT_DIR: opts.agentDir || TEST_AGENT,
    LABBOX_AGENT_COMMAND: opts.agentCommand || "python3 agent.py",
    LABBOX_LOG_LEVEL: "info",
    LABBOX_DISK_RESERVE_MB: "0",
    ...svc.env,
    ...(opts.env || {}),
    ...Object.fromEntries(Object.entries(opts.config || {}).map(([k, v]) => [`LABBOX_${k.toUpperCase()}`, String(v)])),
  };
  for (const k of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "CI"]) if (process.env[k]) env[k] = process.env[k];
  const r = spawnSync(path.join(ROOT, "scripts/render-nginx"), [
    "--listen", `127.0.0.1:${port}`, "--data", data, "--socket", sock,
    "--max-body", String(opts.maxBody || "60m"), "--upload-rate", opts.uploadRate || "1000r/s",
    ...(opts.metricsAllow ? ["--metrics-allow", opts.metricsAllow] : []),
    ...(htpasswd ? ["--htpasswd", htpasswd] : []),
    ...(opts.remoteUser ? ["--remote-user", opts.remoteUser] : []), path.join(dir, "nginx"),
  ], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`render-nginx: ${r.stderr}`);
  if (opts.serverConf) {
    const conf = path.join(dir, "nginx/nginx.conf");
    const text = fs.readFileSync(conf, "utf8");
    const include = `include ${path.join(dir, "nginx")}/locations.conf;`;
    if (!text.includes(include)) throw new Error("nginx.conf has no locations.conf include");
    fs.writeFileSync(conf, text.replace(include, `${opts.serverConf}\n        ${include}`));
  }

  const logPath = path.join(dir, "labbox.log");
  validateApi(`http://127.0.0.1:${port}`);
  const stack = {
    backend, dir, data, port, env, svc, sock,
    url: `http://127.0.0.1:${port}`,
    serve: null, nginx: null,
    log: () => fs.readFileSync(logPath, "utf8"),
    users, user: opts.user || (users ? Object.keys(users)[0] : null),
    // The request headers that sign in as user (none without users, or for user null), or
    // those of the test's own sign-in (opts.authHeaders).
    auth: opts.authHeaders || ((user) => (users && user ? { authorization: "Basic " + Buffer.from(`${user}:${users[user]}`).toString("base64") } : {})),
  };
  // opts.runAs: serve runs as that user with only opts.caps (capability names, as labbox.service
  // gives them: ambient and bounding set, no new privileges); it owns the data dir.
  if (opts.runAs) {
    for (const d of [data, path.join(dir, "sandboxes")]) {
      fs.mkdirSync(d, { recursive: true });
      spawnSync("chown", [`${opts.runAs}:${opts.runAs}`, d]);
    }
  }
  // opts.devicesDeny: device rules ("c 10:237 rwm") serve and everything it starts may not
  // use (a v1 devices cgroup of the stack's own, as a unit's DeviceAllow= would).
  let devcg = null;
  if (opts.devicesDeny) {
    devcg = `/sys/fs/cgroup/devices/${path.basename(dir)}`;
    fs.mkdirSync(devcg);
    for (const rule of opts.devicesDeny) fs.writeFileSync(path.join(devcg, "devices.deny"), rule);
  }
  const serveCommand = (args) => {
    let cmd = [...(opts.serveWrap || []), LABBOX, ...args];
    if (opts.runAs) {
      const caps = (opts.caps || []).map((c) => `+${c}`).join(",");
      cmd = ["setpriv", `--reuid=${opts.runAs}`, `--regid=${opts.runAs}`, "--init-groups", "--no-new-privs",
        ...(caps ? [`--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=-all,${caps}`]
          : ["--inh-caps=-all", "--bounding-set=-all"]), ...cmd];
    }
    if (devcg) cmd = ["sh", "-c", `echo $$ > ${devcg}/cgroup.procs && exec "$@"`, "sh", ...cmd];
    return [cmd[0], cmd.slice(1)];
  };
  stack.startServe = async () => {
    const out = fs.openSync(logPath, "a");
    const args = opts.configFile ? ["serve", "--config", opts.configFile] : ["serve"];
    const [cmd, argv] = serveCommand(args);
    stack.serve = spawn(cmd, argv, { env, stdio: ["ignore", out, out] });
    fs.closeSync(out);
    for (let i = 0; i < 200; i++) {
      if (fs.existsSync(sock)) {
        const ok = await new Promise((res) => {
          const c = net.connect(sock, () => { c.destroy(); res(true); });
          c.on("error", () => res(false));
        });
        if (ok) return;
      }
      if (stack.serve.exitCode !== null) throw new Error(`labbox serve exited:\n${stack.log()}`);
      await sleep(25);
    }
    throw new Error(`labbox serve did not listen:\n${stack.log()}`);
  };
  stack.stopServe = async (signal = "SIGTERM") => {
    if (!stack.serve || stack.serve.exitCode !== null) return;
    const done = new Promise((res) => stack.serve.once("exit", res));
    stack.serve.kill(signal);
    await done;
  };
  try {
    await stack.startServe();
  } catch (e) {
    // A stack that never served leaves nothing behind (a test may expect the start to fail).
    if (devcg) try { fs.rmdirSync(devcg); } catch { /* still in use */ }
    if (!process.env.LABBOX_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  stack.nginx = spawn("nginx", ["-p", path.join(dir, "nginx"), "-c", path.join(dir, "nginx/nginx.conf"),
    "-e", path.join(dir, "nginx/error.log")], { stdio: "ignore" });
  let up = false;
  for (let i = 0; i < 400 && !up; i++) {
    try {
      // Up once labbox answers (a 401 too: identity = remote_user without a sign-in in front).
      const res = await fetch(`${stack.url}/api/limits`, { headers: stack.auth(stack.user) });
      up = res.ok || res.status === 401;
    } catch { /* not yet */ }
    if (!up) await sleep(25);
  }
  if (!up) {
    stack.nginx.kill("SIGTERM");
    await stack.stopServe();
    throw new Error(`the stack did not answer /api/limits:\n${stack.log()}`);
  }
  stack.stop = async () => {
    // Jobs still running belong to the test that started them; cancel them so nothing leaks.
    try {
      for (const id of fs.readdirSync(path.join(data, "jobs"))) {
        const job = JSON.parse(fs.readFileSync(path.join(data, "jobs", id, "job.json"), "utf8"));
        if (!["succeeded", "failed", "timed_out", "canceled"].includes(job.state)) {
          const headers = stack.auth(users && users[job.owner] !== undefined ? job.owner : null);
          await fetch(`${stack.url}/api/jobs/${id}`, { method: "DELETE", headers }).catch(() => {});
        }
      }
    } catch { /* data dir gone */ }
    stack.nginx.kill("SIGTERM");
    await stack.stopServe();
    await waitSupervisors(data);
    if (devcg) for (let i = 0; i < 50; i++) { try { fs.rmdirSync(devcg); break; } catch { await sleep(100); } }
    if (!process.env.LABBOX_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  };
  return stack;
}

// waitSupervisors: a job's supervisor outlives its terminal state while it tears the sandbox
// down, and outlives serve; wait (up to 60 s) until no job of this data dir is held, so that
// nothing is still writing when the test removes the dir. flock(1) is util-linux's.
async function waitSupervisors(data) {
  const locks = () => {
    const out = [];
    for (const sub of ["jobs", "tmp"]) {
      let names = [];
      try { names = fs.readdirSync(path.join(data, sub)); } catch { /* gone */ }
      for (const n of names) out.push(path.join(data, sub, n, "lock"));
    }
    return out.filter((l) => fs.existsSync(l));
  };
  for (let i = 0; i < 600; i++) {
    const held = locks().filter((l) => spawnSync("flock", ["-n", l, "true"]).status !== 0);
    if (held.length === 0) return;
    await sleep(100);
  }
}

// supervisorPids: the processes holding the job's lock file open: its supervisor (its id is
// in no process's argv). Needs root to read other users' /proc/<pid>/fd.
export function supervisorPids(stack, id) {
  const lock = path.join(stack.data, "jobs", id, "lock");
  const pids = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let target = "";
      try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      if (target === lock) { pids.push(Number(pid)); break; }
    }
  }
  return pids;
}

// killSupervisor: SIGKILL the job's supervisor; false when none was found.
export function killSupervisor(stack, id) {
  const pids = supervisorPids(stack, id);
  for (const p of pids) {
    try { process.kill(p, "SIGKILL"); } catch { /* gone meanwhile */ }
  }
  return pids.length > 0;
}

// workAlias: the name of a job's work dir and cgroups (util/id.c id_alias): base32 of the first
// 16 bytes of SHA-256("labbox work dir\n" + id), never the id itself.
export function workAlias(id) {
  const md = crypto.createHash("sha256").update(`labbox work dir\n${id}`).digest().subarray(0, 16);
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0, buf = 0, out = "";
  for (const b of md) {
    buf = (buf << 8) | b;
    bits += 8;
    while (bits >= 5) { out += alphabet[(buf >> (bits - 5)) & 31]; bits -= 5; }
    buf &= (1 << bits) - 1;
  }
  return out + alphabet[(buf << (5 - bits)) & 31];
}

// upload: POST /api/jobs with files [{name, data, type}] and optional params, as user; returns
// {status, headers, body}.
export async function upload(stack, files, params, user = stack.user) {
  const fd = new FormData();
  for (const f of files) fd.append("files", new Blob([f.data], { type: f.type || "application/octet-stream" }), f.name);
  if (params !== undefined) fd.append("params", typeof params === "string" ? params : JSON.stringify(params));
  const res = await fetch(`${stack.url}/api/jobs`, { method: "POST", body: fd, headers: stack.auth(user) });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, headers: res.headers, body };
}

export async function getJSON(stack, p, user = stack.user) {
  const res = await fetch(stack.url + p, { headers: stack.auth(user) });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, headers: res.headers, body };
}

export const TERMINAL = ["succeeded", "failed", "timed_out", "canceled"];

// waitFor: poll the job until pred(job) or timeout.
export async function waitFor(stack, id, pred = (j) => TERMINAL.includes(j.state), ms = 60000, user = stack.user) {
  const end = Date.now() + ms;
  let job;
  while (Date.now() < end) {
    job = (await getJSON(stack, `/api/jobs/${id}`, user)).body;
    if (pred(job)) return job;
    await sleep(50);
  }
  throw new Error(`job ${id} did not reach the expected state in ${ms} ms; last: ${JSON.stringify(job)}\n${stack.log()}`);
}

// logRecords: every record of the job's log (read in pages: one answer is capped), as user.
export async function logRecords(stack, id, user = stack.user) {
  const out = [];
  for (let off = 0; ;) {
    const res = await fetch(`${stack.url}/api/jobs/${id}/logs?format=ndjson&offset=${off}`, { headers: stack.auth(user) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`logs of ${id}: ${res.status} ${text}`);
    const next = Number(res.headers.get("log-offset"));
    for (const l of text.split("\n").filter(Boolean)) out.push(JSON.parse(l));
    if (!(next > off)) return out;
    off = next;
  }
}

export const CSV = "subject,condition,score\n" +
  Array.from({ length: 20 }, (_, i) => `${i + 1},${i % 2 ? "treated" : "control"},${(50 + i * 1.5 + (i % 2) * 7).toFixed(1)}`).join("\n") + "\n";
