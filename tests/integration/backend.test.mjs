// backend: the integration cases every sandbox backend must pass, through nginx + labbox.
// LABBOX_TEST_BACKEND picks the backend (local, docker, modal); ctest runs this file once each.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CSV, getJSON, logRecords, sleep, startStack, stopServices, upload, waitFor } from "./harness.mjs";

const backend = process.env.LABBOX_TEST_BACKEND || "local";

describe(`backend ${backend}`, () => {
  let stack;
  before(async () => {
    stack = await startStack({ backend, config: { wall_timeout: 20, max_concurrent: 4 } });
  });
  after(async () => {
    await stack?.stop();
    stopServices();
  });

  test("success with nested and binary outputs, and a zip of exactly them", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok", lines: 3 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.equal(job.exit_code, 0);
    assert.equal(job.backend, backend);
    const paths = job.outputs.map((o) => o.path).sort();
    assert.deepEqual(paths, ["nested/deeper/data.bin", "nested/note.md", "result.txt"]);
    const bin = await fetch(`${stack.url}/api/jobs/${job.id}/outputs/nested/deeper/data.bin`);
    assert.equal(bin.status, 200);
    assert.match(bin.headers.get("content-disposition"), /^attachment/);
    assert.equal(bin.headers.get("x-content-type-options"), "nosniff");
    assert.equal(bin.headers.get("content-security-policy"), "sandbox");
    const bytes = Buffer.from(await bin.arrayBuffer());
    assert.deepEqual(bytes, Buffer.concat(Array(4).fill(Buffer.from([...Array(256).keys()]))));
    const res = await fetch(`${stack.url}/api/jobs/${job.id}/outputs/result.txt`);
    assert.equal(await res.text(), "inputs: data.csv,params.json\n");
    // The zip holds exactly the outputs, byte for byte.
    const zip = Buffer.from(await (await fetch(`${stack.url}/api/jobs/${job.id}/outputs.zip`)).arrayBuffer());
    const zf = path.join(stack.dir, "out.zip");
    fs.writeFileSync(zf, zip);
    const list = spawnSync("unzip", ["-Z1", zf], { encoding: "utf8" });
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split("\n").sort(), paths);
    const inner = spawnSync("unzip", ["-p", zf, "nested/deeper/data.bin"]);
    assert.deepEqual(inner.stdout, bytes);
  });

  test("log records arrive in order, stdout and stderr apart", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok", lines: 50 });
    await waitFor(stack, r.body.id);
    const recs = await logRecords(stack, r.body.id);
    const out = recs.filter((x) => x.stream === "stdout").map((x) => x.line);
    assert.match(out[0], /^test agent mode=ok backend=/);
    assert.ok(out[0].includes(`backend=${backend}`), out[0]);
    assert.deepEqual(out.slice(1, 51), Array.from({ length: 50 }, (_, i) => `line ${i}`));
    assert.equal(out[51], "done");
    assert.deepEqual(recs.filter((x) => x.stream === "stderr").map((x) => x.line), ["to stderr"]);
    assert.ok(recs.some((x) => x.stream === "system" && /succeeded/.test(x.line)));
    for (const x of recs) assert.equal(typeof x.t, "number");
  });

  test("hostile outputs: links, FIFOs and hard links are never collected or served", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "hostile" });
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    const paths = job.outputs.map((o) => o.path);
    assert.ok(paths.includes("good.txt"));
    for (const bad of ["passwd-link", "up", "fifo"]) assert.ok(!paths.includes(bad), bad);
    if (backend === "local") {
      assert.ok(!paths.includes("hardlink"));
    } else if (paths.includes("hardlink")) {
      // A tar stores the first name of a hard-linked inode as a plain file: from a remote
      // sandbox that is the sandbox's own copy of the input, never a file of this host.
      const res = await fetch(`${stack.url}/api/jobs/${job.id}/outputs/hardlink`);
      assert.equal(await res.text(), CSV);
    }
    // At most one of a hard-linked pair (a tar carries the first as a plain file).
    assert.ok(!(paths.includes("twin-a") && paths.includes("twin-b")));
    for (const p of ["passwd-link", "up/jobs", "fifo", "../job.json", "..%2Fjob.json", "%2E%2E/job.json"]) {
      const res = await fetch(`${stack.url}/api/jobs/${job.id}/outputs/${p}`);
      assert.notEqual(res.status, 200, p);
      const body = await res.text();
      assert.ok(!body.includes("root:"), p);
    }
    const dir = path.join(stack.data, "jobs", job.id, "outputs");
    for (const e of fs.readdirSync(dir, { recursive: true })) {
      const st = fs.lstatSync(path.join(dir, e));
      assert.ok(st.isFile() || st.isDirectory(), e);
    }
  });

  test("non-zero exit ends failed/exit_nonzero with the code", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "exit", code: 3 });
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "failed");
    assert.equal(job.reason, "exit_nonzero");
    assert.equal(job.exit_code, 3);
    assert.match(job.detail, /code 3/);
    const recs = await logRecords(stack, r.body.id);
    assert.ok(recs.some((x) => x.stream === "stderr" && x.line === "something went wrong"));
  });

  test("timeout ends timed_out/timeout", async () => {
    const s2 = await startStack({ backend, config: { wall_timeout: 2 } });
    try {
      const r = await upload(s2, [{ name: "data.csv", data: CSV }], { mode: "sleep", seconds: 60 });
      const t0 = Date.now();
      const job = await waitFor(s2, r.body.id, undefined, 40000);
      assert.equal(job.state, "timed_out", JSON.stringify(job));
      assert.equal(job.reason, "timeout");
      assert.ok(Date.now() - t0 < 30000);
      const recs = await logRecords(s2, r.body.id);
      assert.ok(recs.some((x) => x.line === "sleeping"));
    } finally {
      await s2.stop();
    }
  });

  test("cancel stops a running job; a second cancel is 409", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "sleep", seconds: 60 });
    const id = r.body.id;
    await waitFor(stack, id, (j) => j.state === "running");
    // Wait for the agent to have printed, so it really runs.
    for (let i = 0; i < 200; i++) {
      if ((await logRecords(stack, id)).some((x) => x.line === "sleeping")) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const c = await fetch(`${stack.url}/api/jobs/${id}/cancel`, { method: "POST" });
    assert.equal(c.status, 202);
    const job = await waitFor(stack, id, undefined, 30000);
    assert.equal(job.state, "canceled");
    assert.equal(job.reason, "canceled");
    const again = await fetch(`${stack.url}/api/jobs/${id}/cancel`, { method: "POST" });
    assert.equal(again.status, 409);
    assert.equal((await again.json()).code, "already_finished");
  });

  test("delete removes every byte of a job, running or not", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "sleep", seconds: 60 });
    const id = r.body.id;
    await waitFor(stack, id, (j) => j.state === "running");
        // Running: answered at once with 202 and gone from the API; the supervisor stops the
    // sandbox and the dispatcher removes the files once it has ended.
    const t0 = Date.now();
    const d = await fetch(`${stack.url}/api/jobs/${id}`, { method: "DELETE" });
    assert.equal(d.status, 202);
    assert.ok(Date.now() - t0 < 2000, "DELETE does not wait for the supervisor");
    assert.equal((await getJSON(stack, `/api/jobs/${id}`)).status, 404);
    assert.equal((await fetch(`${stack.url}/api/jobs/${id}`, { method: "DELETE" })).status, 404);
    assert.ok(!fs.existsSync(path.join(stack.data, "jobs", id)));
    const tmp = path.join(stack.data, "tmp");
    for (let i = 0; i < 300 && fs.readdirSync(tmp).length > 0; i++) await sleep(100);
    assert.equal(fs.readdirSync(tmp).length, 0, "the deleted job's files are removed");
        // Finished: removed in the request (204), or, while its supervisor still tears the sandbox
    // down, after it (202).
    const f = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok" });
    await waitFor(stack, f.body.id);
    const fd = await fetch(`${stack.url}/api/jobs/${f.body.id}`, { method: "DELETE" });
    assert.ok([202, 204].includes(fd.status), String(fd.status));
    if (fd.status === 204) assert.equal(fs.readdirSync(tmp).length, 0);
    for (let i = 0; i < 300 && fs.readdirSync(tmp).length > 0; i++) await sleep(100);
    assert.equal(fs.readdirSync(tmp).length, 0);
  });
});
