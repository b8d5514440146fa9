// remote: what only the re-attachable backends (docker, modal) must do, through the whole stack:
// a supervisor killed mid-run is replaced and the job finishes with its whole log, also across a
// restart of serve; sandboxes of ours that no job claims are removed at start-up, and those of
// another deployment with the default instance name are left alone; an engine or
// service that is down or refuses us ends jobs failed/sandbox_error with words a person reads,
// and /api/health says why. LABBOX_TEST_BACKEND is docker or modal.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { BUILD, CSV, ROOT, backendService, getJSON, killSupervisor, logRecords, requireTool, sleep, startStack, stopServices, supervisorPids, upload, waitFor } from "./harness.mjs";

const backend = process.env.LABBOX_TEST_BACKEND || "docker";
const INSTANCE = `it-${process.pid}`;

// A raw call to the Docker-compatible engine.
function engine(host, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: host.replace(/^unix:\/\//, ""), method, path: p,
      headers: body ? { "content-type": "application/json" } : {} }, (res) => {
      let data = "";
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode, body: data ? JSON.parse(data) : null }));
    });
    req.on("error", reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

async function admin(svc, p, body) {
  const res = await fetch(svc.admin + p, { method: body ? "POST" : "GET", body: body ? JSON.stringify(body) : undefined,
    headers: { "content-type": "application/json" } });
  return res.json();
}

function ticks(recs) {
  return recs.filter((x) => /^tick /.test(x.line)).map((x) => Number(x.line.slice(5)));
}

describe(`remote backend ${backend}`, () => {
  let stack, svc;
  before(async () => {
    svc = await backendService(backend);
    stack = await startStack({ backend, config: { instance: INSTANCE, wall_timeout: 60 } });
  });
  after(async () => {
    await stack?.stop();
    stopServices();
  });

  test("a supervisor killed mid-run is replaced; the job finishes with its whole log", async () => {
    const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "slow", seconds: 4, interval: 0.05 });
    const id = r.body.id;
    for (let i = 0; i < 200; i++) {
      if (ticks(await logRecords(stack, id)).length >= 5) break;
      await sleep(50);
    }
    assert.ok(killSupervisor(stack, id), "its supervisor holds the job's lock");
    // Also restart serve while no supervisor runs: the new one recovers the job.
    await stack.stopServe();
    await sleep(500);
    await stack.startServe();
    const job = await waitFor(stack, id, undefined, 90000);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    const recs = await logRecords(stack, id);
    const t = ticks(recs);
    assert.ok(t.length > 20, `${t.length} ticks`);
    assert.deepEqual(t, t.map((_, i) => i), "no tick lost or repeated");
    assert.ok(recs.some((x) => /re-attaching/.test(x.line)));
    assert.equal(recs.filter((x) => x.line === "done").length, 1);
    assert.ok(job.outputs.some((o) => o.path === "result.txt"));
  });

  test("an agent that ended past wall_timeout while no supervisor watched is timed_out, whatever ended it", async () => {
    // The agent dies of SIGTERM (exit 143) 4 s in, past its 3 s limit, while its supervisor is
    // dead and serve is down: the recovering supervisor judges by the time, not by the signal or
    // by whether its first poll already sees the end.
    // An instance of its own: the suite's main stack (instance INSTANCE, another data dir) would
    // take this stack's container for an orphan if its backend check recovered meanwhile.
    const s = await startStack({ backend, config: { instance: `${INSTANCE}-late`, wall_timeout: 3 },
      agentCommand: "sh -c 'echo started; sleep 60 & p=$!; sleep 4; kill -TERM $p; wait $p'" });
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }]);
      assert.equal(r.status, 201);
      const id = r.body.id;
      for (let i = 0; i < 400; i++) {
        if ((await logRecords(s, id)).some((x) => x.line === "started")) break;
        await sleep(25);
      }
      // serve first, so that no recovery supervisor starts before the agent has ended.
      await s.stopServe();
      assert.ok(killSupervisor(s, id), "its supervisor holds the job's lock");
      await sleep(5500);
      await s.startServe();
      const job = await waitFor(s, id, undefined, 60000);
      assert.equal(job.state, "timed_out", JSON.stringify(job));
      assert.equal(job.reason, "timeout");
      assert.equal(job.signal, 15, JSON.stringify(job));
      // The supervisor still destroys the sandbox after the terminal state: let it finish.
      for (let i = 0; i < 200 && supervisorPids(s, id).length > 0; i++) await sleep(50);
    } finally {
      await s.stop();
    }
  });

  test("a job's container or Modal sandbox names its owner (label labbox.owner, tag owner)", async () => {
    const s = await startStack({ backend, users: { alice: "alice-pw" }, config: { instance: `${INSTANCE}-own`, wall_timeout: 60 } });
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 30 });
      assert.equal(r.status, 201);
      await waitFor(s, r.body.id, (j) => j.state === "running");
      if (backend === "docker") {
        const filters = encodeURIComponent(JSON.stringify({ label: [`labbox.job=${r.body.id}`] }));
        const list = await engine(svc.host, "GET", `/v1.41/containers/json?filters=${filters}`);
        assert.equal(list.body.length, 1, JSON.stringify(list.body));
        assert.equal(list.body[0].Labels["labbox.owner"], "alice");
      } else {
        const sb = (await admin(svc, "/state")).sandboxes.find((x) => x.tags_map.job === r.body.id && x.running);
        assert.ok(sb, "the job's sandbox");
        assert.equal(sb.tags_map.owner, "alice");
        assert.equal(sb.tags_map.labbox, `${INSTANCE}-own`);
      }
      await fetch(`${s.url}/api/jobs/${r.body.id}/cancel`, { method: "POST", headers: s.auth("alice") });
      await waitFor(s, r.body.id);
    } finally {
      await s.stop();
    }
  });

  test("sandboxes of ours that no job claims are removed at start-up; others are left", async () => {
    let mine, foreign;
    if (backend === "docker") {
      const mk = async (labels) => {
        const c = await engine(svc.host, "POST", "/v1.41/containers/create", {
          Image: "localhost/labbox-test:latest", Cmd: ["sleep", "300"], Labels: labels });
        assert.equal(c.status, 201, JSON.stringify(c.body));
        await engine(svc.host, "POST", `/v1.41/containers/${c.body.Id}/start`);
        return c.body.Id;
      };
      mine = await mk({ labbox: INSTANCE, "labbox.job": "aaaaaaaaaaaaaaaaaaaaaaaaaa" });
      foreign = await mk({ labbox: "someone-else", "labbox.job": "aaaaaaaaaaaaaaaaaaaaaaaaaa" });
      await stack.stopServe();
      await stack.startServe();
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        await sleep(100);
        gone = (await engine(svc.host, "GET", `/v1.41/containers/${mine}/json`)).status === 404;
      }
      assert.ok(gone, "the orphan was removed");
      assert.equal((await engine(svc.host, "GET", `/v1.41/containers/${foreign}/json`)).status, 200);
      await engine(svc.host, "DELETE", `/v1.41/containers/${foreign}?force=1`);
    } else {
      const { ModalClient } = await import(path.join(ROOT, "tests/fake-modal/node_modules/modal/dist/index.js"));
      // The SDK reads its server and credentials from the environment, like labbox does.
      Object.assign(process.env, { MODAL_SERVER_URL: svc.env.MODAL_SERVER_URL, MODAL_TOKEN_ID: "ak-test",
        MODAL_TOKEN_SECRET: "as-test", MODAL_CONFIG_PATH: "/nonexistent/.modal.toml",
        MODAL_SANDBOX_V2: "0" }); // V1 sandboxes, the family labbox creates and lists
      const mc = new ModalClient();
      const app = await mc.apps.fromName("labbox", { createIfMissing: true });
      const image = mc.images.fromRegistry("python:3.12-slim");
      const a = await mc.sandboxes.create(app, image, { command: ["sleep", "300"],
        tags: { labbox: INSTANCE, job: "aaaaaaaaaaaaaaaaaaaaaaaaaa" } });
      const b = await mc.sandboxes.create(app, image, { command: ["sleep", "300"],
        tags: { labbox: "someone-else", job: "aaaaaaaaaaaaaaaaaaaaaaaaaa" } });
      mine = a.sandboxId;
      foreign = b.sandboxId;
      await stack.stopServe();
      await stack.startServe();
      let state;
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        state = await admin(svc, "/state");
        const sa = state.sandboxes.find((s) => s.id === mine);
        if (!sa || !sa.running) break;
      }
      const sa = state.sandboxes.find((s) => s.id === mine);
      assert.ok(!sa || !sa.running, "the orphan was terminated");
      assert.ok(state.sandboxes.find((s) => s.id === foreign).running, "another instance's is left");
      await b.terminate();
      mc.close?.();
    }
  });

  test("two deployments with the default instance on one engine or Modal workspace leave each other's sandboxes alone", async () => {
    // Two hosts with the same name and the same data_dir path, as two containers or VMs built
    // from one recipe: here one host, with the second labbox in a mount namespace of its own
    // where its own directory is mounted over the first one's data_dir.
    requireTool(spawnSync("unshare", ["-m", "true"]).status === 0, "unshare -m (root, util-linux)");
    const a = await startStack({ backend, config: { wall_timeout: 60 } });
    const bdir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-it-b-"));
    fs.mkdirSync(path.join(bdir, "data"));
    let b = null;
    try {
      const health = (await getJSON(a, "/api/health")).body;
      assert.match(health.instance, /^lb-[a-z0-9]{16}$/, JSON.stringify(health));
      assert.equal(fs.readFileSync(path.join(a.data, "instance"), "utf8").trim(), health.instance);
      const r = await upload(a, [{ name: "a.csv", data: CSV }], { mode: "slow", seconds: 6, interval: 0.1 });
      await waitFor(a, r.body.id, (j) => j.state === "running");
      for (let i = 0; i < 200 && ticks(await logRecords(a, r.body.id)).length < 3; i++) await sleep(50);
      const blog = path.join(bdir, "serve.log");
      const out = fs.openSync(blog, "a");
      b = spawn("unshare", ["-m", "--", "sh", "-c", 'mount --bind "$1" "$2" && exec "$3" serve', "sh",
        path.join(bdir, "data"), a.data, path.join(BUILD, "labbox")], {
        env: { ...a.env, LABBOX_LISTEN: path.join(bdir, "labbox.sock"), LABBOX_SANDBOX_DIR: path.join(bdir, "sandboxes") },
        stdio: ["ignore", out, out],
      });
      fs.closeSync(out);
      // The second deployment's first backend check, at its start, reaps what it takes for its
      // orphans.
      let text = "";
      for (let i = 0; i < 300 && !/serving on/.test(text); i++) {
        await sleep(100);
        text = fs.readFileSync(blog, "utf8");
      }
      assert.match(text, /serving on/, text);
      await sleep(3000);
      text = fs.readFileSync(blog, "utf8");
      const other = /instance (lb-[a-z0-9]{16})/.exec(text)?.[1];
      assert.ok(other && other !== health.instance, `instances ${health.instance} and ${other}`);
      assert.ok(!/orphan/.test(text), text);
      const job = await waitFor(a, r.body.id, undefined, 60000);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
    } finally {
      if (b && b.exitCode === null) {
        const done = new Promise((res) => b.once("exit", res));
        b.kill("SIGTERM");
        await done;
      }
      await a.stop();
      fs.rmSync(bdir, { recursive: true, force: true });
    }
  });

  test("the engine or service down: sandbox_error in words, health says why, nothing left", async () => {
    const config = backend === "docker"
      ? { instance: INSTANCE, docker_host: "unix:///nonexistent/docker.sock" }
      : { instance: INSTANCE };
    const env = backend === "modal" ? { MODAL_SERVER_URL: "http://127.0.0.1:9" } : {};
    const s = await startStack({ backend, config, env });
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      assert.equal(r.status, 201);
      const job = await waitFor(s, r.body.id, undefined, 90000);
      assert.equal(job.state, "failed");
      assert.equal(job.reason, "sandbox_error");
      assert.match(job.detail, backend === "docker" ? /docker|engine/i : /Modal|reach/i);
      assert.ok(!job.detail.includes("as-test"));
      let h;
      for (let i = 0; i < 100; i++) {
        h = await getJSON(s, "/api/health");
        if (h.body.backend_ok === false) break;
        await sleep(200);
      }
      assert.equal(h.body.backend_ok, false);
      assert.equal(h.status, 503);
      assert.equal(typeof h.body.backend_error, "string");
      assert.equal((await getJSON(s, "/api/limits")).status, 200, "the server keeps answering");
    } finally {
      await s.stop();
    }
  });

  test("wrong credentials (modal) or a missing image (docker) end the job with a clear detail", async () => {
    const config = backend === "docker"
      ? { instance: INSTANCE, docker_image: "localhost/no-such-image:1" }
      : { instance: INSTANCE };
    const env = backend === "modal" ? { MODAL_TOKEN_SECRET: "wrong" } : {};
    const s = await startStack({ backend, config, env });
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      const job = await waitFor(s, r.body.id, undefined, 60000);
      assert.equal(job.reason, "sandbox_error");
      assert.match(job.detail, backend === "docker" ? /not found/ : /token/i);
      assert.ok(!job.detail.includes("wrong"));
    } finally {
      await s.stop();
    }
  });

  if (backend === "docker") {
    test("an image from the agent dir's Dockerfile is built once by the engine, its output in the job's log", async () => {
      const agentDir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-docker-image-"));
      fs.cpSync(path.join(ROOT, "tests/integration/agents"), agentDir, { recursive: true });
      const mark = `built-${process.pid}-${Date.now()}`;
      fs.writeFileSync(path.join(agentDir, "Dockerfile"),
        `FROM localhost/labbox-test:latest\n# the marker the agent reads\nRUN echo ${mark} > /labbox-marker \\\n && chmod 644 /labbox-marker\n`);
      const s = await startStack({ backend, agentDir, config: { instance: INSTANCE } });
      try {
        const run = async () => {
          const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "cat", path: "/labbox-marker" });
          const job = await waitFor(s, r.body.id, undefined, 120000);
          assert.equal(job.state, "succeeded", `${JSON.stringify(job)}\n${s.log().slice(-2000)}`);
          return logRecords(s, r.body.id);
        };
        const first = await run();
        assert.ok(first.some((x) => x.stream === "stdout" && x.line === mark), "the agent ran in the built image");
        const sys = first.filter((x) => x.stream === "system").map((x) => x.line);
        assert.ok(sys.some((l) => /^docker image labbox-image:[0-9a-f]{16} from Dockerfile on localhost\/labbox-test:latest$/.test(l)), sys.join("\n"));
        assert.ok(sys.some((l) => l.startsWith("image build: ") && l.includes(`echo ${mark}`)), sys.join("\n"));
        const second = await run();
        assert.ok(second.some((x) => x.line === mark));
        assert.ok(!second.some((x) => x.stream === "system" && x.line.startsWith("image build:")), "built once");
      } finally {
        await s.stop();
        fs.rmSync(agentDir, { recursive: true, force: true });
      }
    });
  }

  if (backend === "modal") {
    test("injected failures: retried UNAVAILABLE, cut streams, router auth, build failure, killed sandbox", async () => {
      await admin(svc, "/injections/clear", {});
      await admin(svc, "/inject", { kind: "unavailable_once", rpc: process.env.LABBOX_MODAL_SANDBOX_VERSION === "2" ? "SandboxCreateV2" : "SandboxCreate" });
      await admin(svc, "/inject", { kind: "stdio_cut", after_bytes: 40, fd: "stdout" });
      await admin(svc, "/inject", { kind: "router_unauthenticated_once" });
      const r = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok", lines: 30 });
      const job = await waitFor(stack, r.body.id, undefined, 60000);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      const out = (await logRecords(stack, r.body.id)).filter((x) => x.stream === "stdout").map((x) => x.line);
      // The cut falls inside the first line: when the resumption takes longer than
      // log_flush_ms, its two halves are two records. Nothing is lost or repeated.
      const first = out.indexOf("line 0");
      assert.match(out.slice(0, first).join(""), new RegExp(`^test agent mode=ok backend=${backend} job=${r.body.id}$`));
      assert.deepEqual(out.slice(first, first + 30), Array.from({ length: 30 }, (_, i) => `line ${i}`));
      assert.equal((await admin(svc, "/injections")).injections.length, 0, "every injection fired");

      // A tag no job built before, so the build really runs (and fails).
      await admin(svc, "/inject", { kind: "image_fail", tag: "python:3.11-slim" });
      const s2 = await startStack({ backend, config: { instance: INSTANCE, modal_image: "python:3.11-slim" } });
      try {
        const b = await upload(s2, [{ name: "a.csv", data: CSV }], { mode: "ok" });
        const jb = await waitFor(s2, b.body.id, undefined, 60000);
        assert.equal(jb.reason, "sandbox_error");
        assert.match(jb.detail, /build/i);
      } finally {
        await admin(svc, "/injections/clear", {});
        await s2.stop();
      }

      const c = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 60 });
      await waitFor(stack, c.body.id, (j) => j.state === "running");
      for (let i = 0; i < 100; i++) {
        if ((await logRecords(stack, c.body.id)).some((x) => x.line === "sleeping")) break;
        await sleep(100);
      }
      const k = await admin(svc, "/kill-sandbox", { tag_job: c.body.id });
      assert.equal(k.killed.length, 1);
      const jc = await waitFor(stack, c.body.id, undefined, 60000);
      assert.equal(jc.state, "failed");
      assert.equal(jc.reason, "sandbox_error");
    });

    test("wall_timeout stops the agent but keeps what it wrote: timed_out, partial.txt downloadable", async () => {
      const s = await startStack({ backend, config: { instance: INSTANCE, wall_timeout: 3 },
        agentCommand: "sh -c 'mkdir -p outputs && echo kept > outputs/partial.txt && echo sleeping && exec sleep 60'" });
      try {
        const r = await upload(s, [{ name: "a.csv", data: CSV }]);
        assert.equal(r.status, 201);
        const t0 = Date.now();
        const job = await waitFor(s, r.body.id, undefined, 60000);
        assert.equal(job.state, "timed_out", JSON.stringify(job));
        assert.equal(job.reason, "timeout");
        assert.ok(Date.now() - t0 < 30000, `${Date.now() - t0} ms`);
        assert.ok((await logRecords(s, r.body.id)).some((x) => x.line === "sleeping"));
        assert.deepEqual(job.outputs.map((o) => o.path), ["partial.txt"], JSON.stringify(job));
        const res = await fetch(`${s.url}/api/jobs/${r.body.id}/outputs/partial.txt`);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), "kept\n");
        // The sandbox was kept for the download only: it is terminated afterwards.
        let sb;
        for (let i = 0; i < 100; i++) {
          sb = (await admin(svc, "/state")).sandboxes.find((x) => x.tags_map.job === r.body.id);
          if (sb && !sb.running) break;
          await sleep(100);
        }
        assert.ok(sb && !sb.running, JSON.stringify(sb));
      } finally {
        await s.stop();
      }
    });
  }
});
