// modal: the Modal backend's behaviour over time, through the whole stack, each case against a
// fake Modal server of its own: a creation that waits for capacity, a silent agent behind a proxy
// that cuts quiet connections, one auth token for every process until it is due, the official
// client's headers, an image built once from the agent dir with its log in the job's log and few
// RPCs per job after the first, and an agent whose execs share no pid namespace, stopped by cancel
// and by the wall clock with its outputs kept. Time is scaled where a case would otherwise wait
// minutes: LABBOX_TEST_MODAL_TIME_SCALE multiplies labbox's Modal deadlines and intervals
// (docs/modal.md#deadlines).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { CSV, ROOT, TEST_AGENT, logRecords, requireTool, sleep, startStack, stopServices, upload, waitFor } from "./harness.mjs";
import { startFakeServer } from "../fake-modal/harness.mjs";

const FAKE_DIR = path.join(ROOT, "tests/fake-modal");
requireTool(fs.existsSync(path.join(FAKE_DIR, "node_modules/@grpc/grpc-js")), "tests/fake-modal/node_modules (npm ci)");

const fakes = [];
async function fakeWith(args) {
  const f = await startFakeServer({ args });
  fakes.push(f);
  return f;
}
async function stackOn(fake, opts = {}) {
  const stack = await startStack({
    backend: "modal",
    ...opts,
    env: { MODAL_SERVER_URL: fake.serverUrl, ...(opts.env || {}) },
  });
  // A job's supervisor still terminates its sandbox and writes its record after the job's end:
  // let it finish before the stack's directory goes.
  const stop = stack.stop;
  stack.stop = async () => {
    for (let i = 0; i < 400 && spawnSync("pgrep", ["-f", `supervise.*${stack.data}`]).status === 0; i++) await sleep(50);
    await stop();
  };
  return stack;
}
const stats = async (fake) => (await fake.admin("GET", "/stats")).rpcs;
const systemLines = (recs) => recs.filter((r) => r.stream === "system").map((r) => r.line);

after(async () => {
  for (const f of fakes) await f.stop();
  stopServices();
});

describe("modal over time", () => {
  test("a creation that waits for capacity longer than a lookup deadline succeeds, and the wait is in the job's log", async () => {
    // 4 s of capacity wait; at scale 0.05 the old 60 s per attempt is 3 s and a lookup's 0.75 s.
    const fake = await fakeWith(["--create-delay-ms", "4000"]);
    const stack = await stackOn(fake, { env: { LABBOX_TEST_MODAL_TIME_SCALE: "0.05" } });
    try {
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      const job = await waitFor(stack, r.body.id, undefined, 60000);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      const s = await stats(fake);
      assert.equal((s.SandboxCreate || 0) + (s.SandboxCreateV2 || 0), 1, "one create, never retried for its length");
      const waits = systemLines(await logRecords(stack, r.body.id)).filter((l) => /waiting for capacity\): \d+ s so far/.test(l));
      assert.ok(waits.length >= 1, "the capacity wait is in the job's log");
    } finally {
      await stack.stop();
    }
  });

  test("a silent agent behind a proxy that cuts quiet connections: its streams are reopened as long as Modal answers", async () => {
    // The proxy cuts connections quiet for 1 s; the agent says nothing for 13 s: a dozen cuts,
    // more than the 10 failures in a row that once ended a job.
    const fake = await fakeWith(["--proxy", "--proxy-idle-cut-ms", "1000"]);
    const stack = await stackOn(fake, { env: { LABBOX_TEST_MODAL_TIME_SCALE: "0.05" } });
    try {
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 13 });
      const job = await waitFor(stack, r.body.id, undefined, 90000);
      assert.equal(job.state, "succeeded", `${JSON.stringify(job)}\n${stack.log().slice(-3000)}`);
      const recs = await logRecords(stack, r.body.id);
      assert.equal(recs.filter((x) => x.line === "sleeping").length, 1);
      const proxy = await fake.admin("GET", "/proxy");
      console.log(`proxy: ${proxy.connections} connections, ${proxy.cuts} cut, ${proxy.pings} PINGs from clients`);
      assert.ok(proxy.cuts >= 10, `the proxy cut ${proxy.cuts} connections`);
    } finally {
      await stack.stop();
    }
  });

  test("HTTP/2 PINGs keep a quiet connection alive, where libcurl can send them", async (t) => {
    const v = spawnSync("curl", ["--version"], { encoding: "utf8" }).stdout || "";
    const m = /libcurl\/(\d+)\.(\d+)/.exec(v);
    if (!m || Number(m[1]) * 100 + Number(m[2]) < 810) {
      t.skip(`libcurl ${m ? `${m[1]}.${m[2]}` : "?"}: curl_easy_upkeep reaches a multi handle's connections from 8.10 on (docs/modal.md#keepalive)`);
      return;
    }
    const fake = await fakeWith(["--proxy", "--proxy-idle-cut-ms", "2500"]);
    const stack = await stackOn(fake, { env: { LABBOX_TEST_MODAL_TIME_SCALE: "0.05" } });
    try {
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 8 });
      const job = await waitFor(stack, r.body.id, undefined, 60000);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      const proxy = await fake.admin("GET", "/proxy");
      assert.ok(proxy.pings > 0, JSON.stringify(proxy));
    } finally {
      await stack.stop();
    }
  });

  test("one auth token serves the health checks and every job's supervisor until shortly before it expires; it stays private", async () => {
    const fake = await fakeWith(["--auth-token-ttl", "20"]);
    const stack = await stackOn(fake, { env: { LABBOX_TEST_MODAL_TIME_SCALE: "0.05" } });
    try {
      const t0 = Date.now();
      const ids = [];
      for (let i = 0; i < 3; i++) {
        const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok" });
        const job = await waitFor(stack, r.body.id, undefined, 30000);
        assert.equal(job.state, "succeeded", JSON.stringify(job));
        ids.push(r.body.id);
      }
      assert.ok(Date.now() - t0 < 15000, "the first jobs ran before the token was due (20 s, renewed 4 s before)");
      assert.equal((await stats(fake)).AuthTokenGet, 1, "one AuthTokenGet for serve and three supervisors");
      const dir = path.join(stack.data, "modal");
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      assert.equal(fs.statSync(path.join(dir, "token")).mode & 0o777, 0o600);
      const token = fs.readFileSync(path.join(dir, "token"), "utf8").trim().split("\n").pop();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      assert.ok(!stack.log().includes(token), "the token is not in labbox's log");
      assert.ok(!fs.readFileSync(path.join(stack.data, "running.conf"), "utf8").includes(token));
      for (const id of ids) assert.ok(!JSON.stringify(await logRecords(stack, id)).includes(token));
      await sleep(Math.max(0, t0 + 17000 - Date.now()));
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      assert.equal((await waitFor(stack, r.body.id, undefined, 30000)).state, "succeeded");
      assert.equal((await stats(fake)).AuthTokenGet, 2, "renewed once it was due, by one process for all");
    } finally {
      await stack.stop();
    }
  });

  test("control-plane calls carry the official JS client's headers", async () => {
    const fake = await fakeWith([]);
    const stack = await stackOn(fake);
    try {
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      assert.equal((await waitFor(stack, r.body.id, undefined, 30000)).state, "succeeded");
      const ours = (await fake.admin("GET", "/calls")).calls.filter((c) => c.service === "client");
      await fake.admin("POST", "/stats/reset");
      // The same kind of calls from modal@0.11.1 itself.
      const env = { MODAL_SERVER_URL: fake.serverUrl, MODAL_TOKEN_ID: "ak-test", MODAL_TOKEN_SECRET: "as-test",
        MODAL_CONFIG_PATH: "/nonexistent/.modal.toml", MODAL_SANDBOX_V2: "0" };
      Object.assign(process.env, env);
      const { ModalClient } = await import(path.join(FAKE_DIR, "node_modules/modal/dist/index.js"));
      const mc = new ModalClient();
      const app = await mc.apps.fromName("labbox-headers", { createIfMissing: true });
      const sb = await mc.sandboxes.create(app, mc.images.fromRegistry("python:3.12-slim"), { tags: { t: "1" } });
      await sb.terminate();
      mc.close();
      const sdk = (await fake.admin("GET", "/calls")).calls.filter((c) => c.service === "client");
      const names = (c) => Object.keys(c.headers).filter((h) => h !== "x-retry-delay" && h !== "x-throttle-retry-delay").sort().join(" ");
      const byRpc = (calls) => Object.fromEntries(calls.map((c) => [c.rpc, c]));
      const a = byRpc(ours), b = byRpc(sdk);
      const both = Object.keys(a).filter((k) => k in b);
      assert.ok(both.length >= 4, `RPCs both made: ${both}`);
      for (const rpc of both) assert.equal(names(a[rpc]), names(b[rpc]), `${rpc}: labbox vs modal@0.11.1`);
      for (const c of ours) {
        assert.equal(c.headers["x-modal-host"], "127.0.0.1");
        assert.equal(c.headers["x-modal-client-type"], "8");
        assert.equal(c.headers["x-modal-client-version"], "1.0.0");
        assert.equal(c.headers["x-modal-libmodal-version"], "modal-js/0.11.1");
      }
    } finally {
      await stack.stop();
    }
  });

  test("an image from the agent dir's requirements.txt is built once with its log in the job's log; later jobs take at most 14 RPCs", async () => {
    const fake = await fakeWith([]);
    const agentDir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-image-agent-"));
    fs.cpSync(TEST_AGENT, agentDir, { recursive: true });
    fs.writeFileSync(path.join(agentDir, "requirements.txt"), "pandas==2.2.2\n");
    const stack = await stackOn(fake, { agentDir, config: { modal_image_commands: '["ENV MPLBACKEND=Agg"]' } });
    const run = async () => {
      await fake.admin("POST", "/stats/reset");
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      const job = await waitFor(stack, r.body.id, undefined, 30000);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      // The counts are read once the supervisor has terminated the sandbox.
      for (let i = 0; i < 100; i++) {
        const s = (await fake.admin("GET", "/state")).sandboxes.find((x) => x.tags_map?.job === r.body.id);
        if (s && !s.running) break;
        await sleep(50);
      }
      await sleep(200);
      return { id: r.body.id, rpcs: await stats(fake) };
    };
    try {
      const first = await run();
      const lines = systemLines(await logRecords(stack, first.id));
      assert.ok(lines.some((l) => /^Modal image from requirements\.txt and modal_image_commands on python:3\.12-slim$/.test(l)), lines.join("\n"));
      assert.ok(lines.includes("image build: => RUN python -m pip install -r /.requirements.txt"), lines.join("\n"));
      assert.ok(lines.includes("image build: => ENV MPLBACKEND=Agg"));
      assert.equal(first.rpcs.ImageGetOrCreate, 1);
      const image = (await fake.admin("GET", "/state")).images.find((i) => i.commands.includes("ENV MPLBACKEND=Agg"));
      assert.deepEqual(image.context_files, [{ filename: "/.requirements.txt", bytes: 14 }]);
      const second = await run();
      assert.equal(second.rpcs.ImageGetOrCreate || 0, 0, "the stored image id is reused");
      assert.ok(!systemLines(await logRecords(stack, second.id)).some((l) => l.startsWith("image build:")));
      // serve's health probe (an AppGetOrCreate every 60 s) may land in the window: not the job's.
      const total = Object.entries(second.rpcs).reduce((n, [k, v]) => n + (k === "AppGetOrCreate" ? 0 : v), 0);
      console.log(`RPCs of a later job: ${total} ${JSON.stringify(second.rpcs)}`);
      assert.ok(total <= 14, `a later job took ${total} RPCs: ${JSON.stringify(second.rpcs)}`);
      fs.writeFileSync(path.join(agentDir, "requirements.txt"), "pandas==2.2.2\nscipy\n");
      const third = await run();
      assert.equal(third.rpcs.ImageGetOrCreate, 1, "a changed requirements.txt is another image");
    } finally {
      await stack.stop();
      fs.rmSync(agentDir, { recursive: true, force: true });
    }
  });

  test("an agent whose execs share no pid namespace is stopped by cancel and by the wall clock; what it wrote is collected", async () => {
    const fake = await fakeWith([]);
    await fake.admin("POST", "/config", { exec_pid_namespace: "private" });
    const stack = await stackOn(fake, {
      agentCommand: "sh -c 'echo kept > outputs/kept.txt; echo started; sleep 60'",
      config: { wall_timeout: 6 },
    });
    try {
      const started = async (id) => {
        for (let i = 0; i < 400; i++) {
          if ((await logRecords(stack, id)).some((x) => x.line === "started")) return;
          await sleep(50);
        }
        throw new Error("the agent did not start");
      };
      const a = await upload(stack, [{ name: "a.csv", data: CSV }]);
      await started(a.body.id);
      assert.equal((await fetch(`${stack.url}/api/jobs/${a.body.id}/cancel`, { method: "POST" })).status, 202);
      const ja = await waitFor(stack, a.body.id, undefined, 30000);
      assert.equal(ja.state, "canceled", JSON.stringify(ja));
      assert.deepEqual(ja.outputs.map((o) => o.path), ["kept.txt"]);
      const b = await upload(stack, [{ name: "a.csv", data: CSV }]);
      const jb = await waitFor(stack, b.body.id, undefined, 40000);
      assert.equal(jb.state, "timed_out", JSON.stringify(jb));
      assert.deepEqual(jb.outputs.map((o) => o.path), ["kept.txt"]);
      // Stopped by the stop file, before the sandbox was terminated: not given up on.
      for (const id of [a.body.id, b.body.id]) {
        const sb = (await fake.admin("GET", "/state")).sandboxes.find((x) => x.tags_map?.job === id);
        const agent = sb?.execs.find((x) => x.argv[3] === "labbox-agent");
        assert.ok(agent && !agent.running && agent.finished_at < sb.finished_at, JSON.stringify(agent));
      }
      assert.ok(!/could not be stopped|did not end after the stop exec/.test(stack.log()));
    } finally {
      await stack.stop();
    }
  });
});
