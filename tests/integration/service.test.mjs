// service: labbox as an operator runs it: SIGHUP reloads (limits change, keys that need a
// restart stay, a bad file changes nothing and supervisors never read it, log_file reopens,
// the scheduler's max_concurrent, max_queue and job_ttl follow), /api/health reporting a
// sandbox_dir jobs cannot be staged in, and the errors nginx itself gives on /api/ as problem+json from the rendered snippet
// (413, 429, 502, 504, /api/metrics restricted to loopback by default).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { CSV, ROOT, freePort, getJSON, logRecords, sleep, startStack, upload, waitFor } from "./harness.mjs";

async function problem(res, status, code) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const b = await res.json();
  assert.equal(b.type, "about:blank");
  assert.equal(b.status, status);
  assert.equal(b.code, code);
  assert.equal(typeof b.title, "string");
  assert.equal(typeof b.detail, "string");
  return b;
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function hup(stack) {
  stack.serve.kill("SIGHUP");
}

const limits = async (stack) => (await getJSON(stack, "/api/limits")).body;

// assertAgentSees: a job of the test agent in env mode succeeds and prints line.
async function assertAgentSees(stack, line) {
  const r = await upload(stack, [{ name: "a.csv", data: CSV, type: "text/csv" }], { mode: "env" });
  assert.equal(r.status, 201);
  assert.equal((await waitFor(stack, r.body.id)).state, "succeeded");
  const lines = (await logRecords(stack, r.body.id)).map((x) => x.line);
  assert.ok(lines.includes(line), lines.join("\n"));
}

describe("reload on SIGHUP", () => {
  let stack, conf, logFile;
  const base = (extra = "") =>
    `# test config\nmax_file_bytes = 100k\nmax_job_bytes = 1M\nmax_files = 4\n` +
    `agent_env = "MARK=one"\nlog_file = labbox.log\n${extra}`;
  before(async () => {
    const dir = fs.mkdtempSync("/tmp/labbox-svc-conf-");
    conf = path.join(dir, "labbox.conf");
    logFile = path.join(dir, "labbox.log");
    fs.writeFileSync(conf, base());
    stack = await startStack({ configFile: conf });
    stack.confDir = dir;
  });
  after(async () => {
    await stack?.stop();
    if (stack) fs.rmSync(stack.confDir, { recursive: true, force: true });
  });
  const log = () => fs.readFileSync(logFile, "utf8");

  test("log_file is relative to the config file and receives the log", async () => {
    assert.match(log(), /serving on/);
  });

  test("a changed limit applies after SIGHUP; keys that need a restart keep their values", async () => {
    assert.equal((await limits(stack)).max_file_bytes, 100 * 1024);
    const big = [{ name: "big.csv", data: "a,b\n" + "1,2\n".repeat(40000), type: "text/csv" }]; // 160 kB
    assert.equal((await upload(stack, big)).status, 413);
    fs.writeFileSync(conf, base("threads = 12\n").replace("max_file_bytes = 100k", "max_file_bytes = 200k")
      .replace("max_files = 4", "max_files = 5"));
    hup(stack);
    await until("the new limit", async () => (await limits(stack)).max_file_bytes === 200 * 1024);
    assert.equal((await limits(stack)).max_files, 5);
    await until("the reload's log line", () => /reloaded the configuration from .*; changed: max_file_bytes max_files/.test(log()));
    assert.match(log(), /WARN .*reload: threads changed, but take effect only at a restart/);
    const r = await upload(stack, big, { mode: "ok" });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal((await waitFor(stack, r.body.id)).state, "succeeded");
  });

  test("new supervisors get the reloaded configuration", async () => {
    fs.writeFileSync(conf, base().replace("max_file_bytes = 100k", "max_file_bytes = 200k")
      .replace("MARK=one", "MARK=two"));
    hup(stack);
    await until("the reload", () => /changed: .*agent_env/.test(log()));
    await assertAgentSees(stack, "MARK=two");
  });

  test("a bad configuration on SIGHUP keeps the running one, says why, and jobs still run", async () => {
    const before = await limits(stack);
    fs.writeFileSync(conf, base().replace("max_file_bytes = 100k", "max_file_bytes = 12 MB"));
    hup(stack);
    await until("the failed reload", () => /reload from .* failed, the running configuration stays: .*line 2: max_file_bytes: 'MB' is ambiguous/.test(log()));
    assert.deepEqual(await limits(stack), before);
    // Supervisors read running.conf, not the broken file.
    await assertAgentSees(stack, "MARK=two");
  });

  test("SIGHUP reopens log_file (rotation)", async () => {
    fs.writeFileSync(conf, base());
    fs.renameSync(logFile, logFile + ".1");
    hup(stack);
    await until("a new log file", () => fs.existsSync(logFile) && /changed: agent_env max_file_bytes$/m.test(log()));
    assert.equal(fs.statSync(logFile).mode & 0o777, 0o640);
    assert.doesNotMatch(fs.readFileSync(logFile + ".1", "utf8"), /changed: agent_env max_file_bytes$/m);
  });
});

describe("the scheduler's keys follow SIGHUP", () => {
  let stack, conf, dir;
  const file = (mc, mq, ttl) => `max_concurrent = ${mc}\nmax_queue = ${mq}\njob_ttl = ${ttl}\n`;
  const health = async () => (await getJSON(stack, "/api/health")).body;
  before(async () => {
    dir = fs.mkdtempSync("/tmp/labbox-svc-sched-");
    conf = path.join(dir, "labbox.conf");
    fs.writeFileSync(conf, file(1, 1, 3600));
    stack = await startStack({ configFile: conf });
  });
  after(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("max_concurrent, max_queue and job_ttl take effect without a restart", async () => {
    const files = [{ name: "a.csv", data: CSV, type: "text/csv" }];
    const a = await upload(stack, files, { mode: "sleep", seconds: 30 });
    assert.equal(a.status, 201);
    await waitFor(stack, a.body.id, (j) => j.state === "running");
    const b = await upload(stack, files, { mode: "sleep", seconds: 30 });
    assert.equal(b.status, 201);
    assert.equal((await upload(stack, files, { mode: "ok" })).status, 429, "max_queue 1: full");
    assert.equal((await getJSON(stack, `/api/jobs/${b.body.id}`)).body.state, "queued");
    assert.equal((await health()).max_concurrent, 1);

    fs.writeFileSync(conf, file(2, 3, 1));
    hup(stack);
    await until("max_concurrent 2 in health", async () => (await health()).max_concurrent === 2);
    // The queued job starts beside the running one; the queue takes more.
    await waitFor(stack, b.body.id, (j) => j.state === "running", 10000);
    const c = await upload(stack, files, { mode: "ok" });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal((await waitFor(stack, c.body.id)).state, "succeeded");
    // job_ttl 1: the finished job is gone at the next sweep (every job_ttl / 2).
    await until("the finished job to expire", async () =>
      (await getJSON(stack, `/api/jobs/${c.body.id}`)).status === 404, 15000);
    assert.match(stack.log(), /changed: max_concurrent max_queue job_ttl/);
    for (const id of [a.body.id, b.body.id])
      await fetch(`${stack.url}/api/jobs/${id}/cancel`, { method: "POST" });
  });
});

describe("health reports a failed staging probe", () => {
  let stack, dir, blocker;
  before(async () => {
    dir = fs.mkdtempSync("/tmp/labbox-svc-stage-");
    fs.chmodSync(dir, 0o711);
    blocker = path.join(dir, "blocker");
    fs.writeFileSync(blocker, "a file where sandbox_dir's parent should be\n");
    stack = await startStack({ config: { sandbox_dir: path.join(blocker, "sandboxes") } });
  });
  after(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a sandbox_dir jobs cannot be staged in: backend_ok false with the reason, then ok once fixed", async () => {
    const h = await until("the failed probe", async () => {
      const r = await getJSON(stack, "/api/health");
      return r.body.backend_ok === false ? r : null;
    });
    assert.equal(h.status, 503);
    assert.equal(h.body.status, "degraded");
    assert.match(h.body.backend_error, /sandbox_dir: Not a directory/);
    assert.ok(!h.body.backend_error.includes(dir), "no host path in health");
    const r = await upload(stack, [{ name: "a.csv", data: CSV, type: "text/csv" }], { mode: "ok" });
    assert.equal(r.status, 201);
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "failed");
    assert.match(job.detail, /^staging failed: cannot create sandbox_dir: Not a directory/);
    // The fix: sandbox_dir's parent is a directory; the next check (every 10 s) says ok.
    fs.rmSync(blocker);
    fs.mkdirSync(blocker, { mode: 0o711 });
    await until("health ok", async () => (await getJSON(stack, "/api/health")).body.backend_ok === true, 15000);
    const ok = await upload(stack, [{ name: "a.csv", data: CSV, type: "text/csv" }], { mode: "ok" });
    assert.equal((await waitFor(stack, ok.body.id)).state, "succeeded");
  });
});

// startNginx: render the snippet with extra render-nginx options into dir and run a whole
// nginx on a free port (for the cases the shared stack's nginx is not configured for).
async function startNginx(dir, args, edit = (s) => s) {
  const port = await freePort();
  const r = spawnSync(path.join(ROOT, "scripts/render-nginx"), ["--listen", `127.0.0.1:${port}`, ...args, dir],
    { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const loc = path.join(dir, "locations.conf");
  fs.writeFileSync(loc, edit(fs.readFileSync(loc, "utf8")));
  const child = spawn("nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")],
    { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  await until("nginx", async () => {
    try {
      await fetch(`${url}/`);
      return true;
    } catch {
      return false;
    }
  });
  return { url, stop: () => child.kill("SIGTERM") };
}

describe("nginx's own errors on /api/ are problem+json", () => {
  let stack;
  before(async () => {
    stack = await startStack({ maxBody: "100k" });
  });
  after(async () => stack?.stop());

  test("413 over client_max_body_size: job_too_large", async () => {
    const body = "x".repeat(300 * 1024);
    const res = await fetch(`${stack.url}/api/jobs`, {
      method: "POST", body, headers: { "content-type": "multipart/form-data; boundary=b" },
    });
    const b = await problem(res, 413, "job_too_large");
    assert.match(b.detail, /100k/);
  });

  test("413 on the other /api/ routes: request_too_large", async () => {
    const res = await fetch(`${stack.url}/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel`, {
      method: "POST", body: "x".repeat(100 * 1024),
    });
    await problem(res, 413, "request_too_large");
  });

  test("/api/metrics: loopback may read it by default", async () => {
    const res = await fetch(`${stack.url}/api/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^# (HELP|TYPE) /m);
  });

  test("/api/metrics: other addresses get 403 forbidden", async () => {
    const dir = fs.mkdtempSync("/tmp/labbox-svc-nginx-");
    const ng = await startNginx(dir, ["--socket", stack.sock, "--data", stack.data, "--metrics-allow", "192.0.2.1, 2001:db8::/32"]);
    try {
      await problem(await fetch(`${ng.url}/api/metrics`), 403, "forbidden");
      assert.equal((await fetch(`${ng.url}/api/health`)).status, 200);
    } finally {
      ng.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("429 over the upload rate: rate_limited with Retry-After", async () => {
    const dir = fs.mkdtempSync("/tmp/labbox-svc-nginx-");
    const ng = await startNginx(dir, ["--socket", stack.sock, "--data", stack.data, "--upload-rate", "1r/m"]);
    try {
      let res;
      for (let i = 0; i < 30; i++) {
        // Not multipart: labbox refuses it at once (400) while the limit is not reached.
        res = await fetch(`${ng.url}/api/jobs`, { method: "POST", body: "x" });
        if (res.status === 429) break;
        assert.ok(res.status >= 400 && res.status < 500, String(res.status));
        await res.arrayBuffer();
      }
      await problem(res, 429, "rate_limited");
      assert.equal(res.headers.get("retry-after"), "1");
    } finally {
      ng.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("504 when labbox does not answer in time: unavailable", async () => {
    const dir = fs.mkdtempSync("/tmp/labbox-svc-nginx-");
    const sock = path.join(dir, "silent.sock");
    const conns = [];
    const silent = net.createServer((c) => conns.push(c)); // accepts, never answers
    await new Promise((res) => silent.listen(sock, res));
    const ng = await startNginx(dir, ["--socket", sock, "--data", stack.data],
      (s) => s.replaceAll("fastcgi_read_timeout 120s;", "fastcgi_read_timeout 1s;"));
    try {
      const res = await fetch(`${ng.url}/api/health`);
      await problem(res, 504, "unavailable");
      assert.equal(res.headers.get("retry-after"), "5");
    } finally {
      ng.stop();
      for (const c of conns) c.destroy();
      silent.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("502 when labbox is down: unavailable with Retry-After, then back", async () => {
    await stack.stopServe();
    for (const p of ["/api/health", "/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa"]) {
      const res = await fetch(stack.url + p);
      const b = await problem(res, 502, "unavailable");
      assert.match(b.detail, /not running/);
      assert.equal(res.headers.get("retry-after"), "5");
    }
    const up = await fetch(`${stack.url}/api/jobs`, { method: "POST", body: "x",
      headers: { "content-type": "multipart/form-data; boundary=b" } });
    await problem(up, 502, "unavailable");
    await stack.startServe();
    assert.equal((await getJSON(stack, "/api/health")).status, 200);
  });
});
