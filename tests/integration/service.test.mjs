// service: labbox as an operator runs it: SIGHUP reloads (limits change, keys that need a
// restart stay, a bad file changes nothing and supervisors never read it, log_file reopens),
// and the errors nginx itself gives on /api/ as problem+json from the rendered snippet
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
