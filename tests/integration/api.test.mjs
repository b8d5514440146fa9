// api: every route and error code of docs/api.md through nginx + labbox, with the local backend;
// plus what only the local backend shows: limits, env, restart of serve, lost supervisors.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { CSV, ROOT, getJSON, killSupervisor, logRecords, sleep, startStack, upload, waitFor, workAlias } from "./harness.mjs";

const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(120)]);

function assertNothingStaged(stack) {
  assert.deepEqual(fs.readdirSync(path.join(stack.data, "tmp")), []);
}

async function problem(res) {
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const b = await res.json();
  assert.equal(typeof b.title, "string");
  assert.equal(b.type, "about:blank");
  return b;
}

describe("api", () => {
  let stack;
  before(async () => {
    stack = await startStack({
      config: { max_file_bytes: 100000, max_job_bytes: 150000, max_files: 3, wall_timeout: 30,
                agent_env: "FROM_CONFIG=yes" },
    });
  });
  after(async () => stack?.stop());

  test("health and limits", async () => {
    const h = await getJSON(stack, "/api/health");
    assert.equal(h.status, 200);
    assert.equal(h.body.status, "ok");
    assert.equal(h.body.backend, "local");
    assert.equal(h.body.backend_ok, true);
    for (const k of ["queued", "running", "max_concurrent"]) assert.equal(typeof h.body[k], "number");
    const l = await getJSON(stack, "/api/limits");
    assert.equal(l.body.max_file_bytes, 100000);
    assert.equal(l.body.max_job_bytes, 150000);
    assert.equal(l.body.max_files, 3);
    assert.equal(l.body.wall_timeout_s, 30);
    assert.ok(l.body.allowed_types.includes("text/csv"));
  });

  test("create answers 201 with Location and the job object", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok" });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get("location"), `/api/jobs/${r.body.id}`);
    assert.match(r.body.id, /^[a-z2-7]{26}$/);
    assert.ok(["queued", "staging", "running"].includes(r.body.state));
    assert.equal(r.body.inputs[0].name, "data.csv");
    assert.equal(r.body.inputs[0].type, "text/csv");
    assert.match(r.body.inputs[0].sha256, /^[0-9a-f]{64}$/);
    assert.equal(r.body.sandbox, undefined);
    assert.equal(r.body.links.events, `/api/jobs/${r.body.id}/events`);
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "succeeded");
    assert.ok(job.usage.wall_ms >= 0 && typeof job.usage.cpu_ms === "number");
    assert.ok(job.started_at && job.finished_at);
  });

  test("upload errors are problem+json with the codes of docs/api.md, and leave nothing behind", async () => {
    const cases = [
      [[{ name: "a.exe", data: ELF }], undefined, 415, "unsupported_type", "a.exe"],
      [[{ name: "run.sh", data: "#!/bin/sh\necho hi\n" }], undefined, 415, "unsupported_type", "run.sh"],
      [[{ name: "page.html", data: "<!DOCTYPE html><html><body><script>x</script></body></html>" }], undefined, 415, "unsupported_type", "page.html"],
      [[{ name: ".hidden.csv", data: CSV }], undefined, 400, "bad_filename", ".hidden.csv"],
      [[{ name: "a.csv", data: CSV }, { name: "a.csv", data: CSV }], undefined, 400, "bad_filename", "a.csv"],
      [[{ name: "big.csv", data: "x,y\n" + "1,2\n".repeat(30000) }], undefined, 413, "file_too_large", "big.csv"],
      [[{ name: "a.csv", data: "x\n" + "1\n".repeat(40000) }, { name: "b.csv", data: "x\n" + "1\n".repeat(40000) }], undefined, 413, "job_too_large", "b.csv"],
      [[1, 2, 3, 4].map((i) => ({ name: `f${i}.csv`, data: CSV })), undefined, 413, "job_too_large", "f4.csv"],
      [[{ name: "a.csv", data: CSV }], "[1,2]", 400, "bad_request", undefined],
      [[{ name: "a.csv", data: CSV }], "{not json", 400, "bad_request", undefined],
      [[{ name: "params.json", data: "{}" }], { a: 1 }, 400, "bad_filename", "params.json"],
    ];
    for (const [files, params, status, code, file] of cases) {
      const r = await upload(stack, files, params);
      assert.equal(r.status, status, `${code}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, code);
      assert.equal(r.body.status, status);
      if (file) assert.equal(r.body.file, file);
      if (file) assert.ok(r.body.detail.includes(file), r.body.detail);
      assert.ok(!JSON.stringify(r.body).includes(stack.data), "no host path in errors");
      assertNothingStaged(stack);
    }
  });

  test("malformed bodies", async () => {
    const post = (body, type) => fetch(`${stack.url}/api/jobs`, { method: "POST", body, headers: type ? { "content-type": type } : {} });
    let b = await problem(await post("hello", "text/plain"));
    assert.equal(b.code, "unsupported_type");
    b = await problem(await post("hello", "multipart/form-data"));
    assert.equal(b.code, "bad_request");
    b = await problem(await post("--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.csv\"\r\n\r\nx,y\n", "multipart/form-data; boundary=xyz"));
    assert.equal(b.code, "bad_request");
    assert.match(b.detail, /malformed/);
    b = await problem(await post("--xyz--\r\n", "multipart/form-data; boundary=xyz"));
    assert.equal(b.code, "bad_request");
    const fd = new FormData();
    fd.append("files", "no filename here");
    b = await problem(await fetch(`${stack.url}/api/jobs`, { method: "POST", body: fd }));
    assert.equal(b.code, "bad_request");
    assertNothingStaged(stack);
  });

  test("metrics in Prometheus text format", async () => {
    // A job counts as finished once the dispatcher has seen its supervisor go (within ~200 ms
    // of its terminal state): read until the earlier tests' job shows up.
    let res, text;
    for (let i = 0; i < 50; i++) {
      res = await fetch(`${stack.url}/api/metrics`);
      text = await res.text();
      if (/^labbox_jobs_finished_total\{state="succeeded"/m.test(text)) break;
      await sleep(100);
    }
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
    for (const name of ["labbox_jobs", "labbox_queue_depth", "labbox_sandboxes_running", "labbox_backend_up",
      "labbox_jobs_finished_total", "labbox_uploads_rejected_total", "labbox_backend_errors_total",
      "labbox_sandbox_start_seconds", "labbox_job_duration_seconds"])
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    assert.match(text, /^labbox_jobs_finished_total\{state="succeeded",reason=""\} [1-9]/m);
    assert.match(text, /^labbox_uploads_rejected_total\{code="unsupported_type"\} [1-9]/m);
    assert.match(text, /^labbox_sandbox_start_seconds_count [1-9]/m);
    assert.match(text, /^labbox_job_duration_seconds_bucket\{le="\+Inf"\} [1-9]/m);
  });

  test("unknown and malformed ids are the same 404; wrong methods are 405", async () => {
    for (const p of ["/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", "/api/jobs/nope", "/api/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAA/logs",
      "/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/outputs", "/api/nothing"]) {
      const res = await fetch(stack.url + p);
      assert.equal(res.status, 404, p);
      assert.equal((await problem(res)).code, "not_found");
    }
        const res = await fetch(`${stack.url}/api/health`, { method: "POST" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    assert.equal((await problem(res)).code, "method_not_allowed");
    const putJobs = await fetch(`${stack.url}/api/jobs`, { method: "PUT" });
    assert.equal(putJobs.status, 405);
    assert.equal(putJobs.headers.get("allow"), "POST, GET, HEAD");
    const put = await fetch(`${stack.url}/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa`, { method: "PUT" });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, HEAD, DELETE");
  });

  test("HEAD answers every GET route with its headers and no body", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok", lines: 2 });
    await waitFor(stack, r.body.id);
    const id = r.body.id;
    const outs = await getJSON(stack, `/api/jobs/${id}/outputs`);
    const first = outs.body.outputs[0].path;
    for (const [p, type] of [["/api/health", /json/], ["/api/limits", /json/], ["/api/metrics", /text\/plain/],
      [`/api/jobs/${id}`, /json/], [`/api/jobs/${id}/logs`, /text\/plain/],
      [`/api/jobs/${id}/events`, /event-stream/], [`/api/jobs/${id}/outputs`, /json/],
      [`/api/jobs/${id}/outputs.zip`, /zip/], [`/api/jobs/${id}/outputs/${first}`, /./]]) {
      const res = await fetch(stack.url + p, { method: "HEAD" });
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get("content-type"), type, p);
      assert.equal((await res.arrayBuffer()).byteLength, 0, p);
    }
    const gone = await fetch(`${stack.url}/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa`, { method: "HEAD" });
    assert.equal(gone.status, 404);
  });

  test("logs as text and ndjson, with offsets", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok", lines: 5 });
    await waitFor(stack, r.body.id);
    const text = await fetch(`${stack.url}/api/jobs/${r.body.id}/logs`);
    assert.equal(text.status, 200);
    assert.match(text.headers.get("content-type"), /^text\/plain/);
    const t = await text.text();
    assert.match(t, /^line 0$/m);
    assert.match(t, /^\[stderr\] to stderr$/m);
    assert.match(t, /^\[labbox\] state: succeeded$/m);
    const end = Number(text.headers.get("log-offset"));
    const nd = await fetch(`${stack.url}/api/jobs/${r.body.id}/logs?format=ndjson`);
    assert.equal(nd.headers.get("content-type"), "application/x-ndjson");
    const body = await nd.text();
    assert.equal(Buffer.byteLength(body), end);
    const lines = body.split("\n").filter(Boolean);
    // Resuming from the end of the third record gives exactly the rest.
    const off = Buffer.byteLength(lines.slice(0, 3).join("\n") + "\n");
    const rest = await fetch(`${stack.url}/api/jobs/${r.body.id}/logs?format=ndjson&offset=${off}`);
    assert.equal(await rest.text(), lines.slice(3).join("\n") + "\n");
    assert.equal(Number(rest.headers.get("log-offset")), end);
    const atEnd = await fetch(`${stack.url}/api/jobs/${r.body.id}/logs?offset=${end}`);
    assert.equal(await atEnd.text(), "");
        // A value too long to be a number or a format is refused, never cut and used.
    for (const bad of [end + 1, off - 1, "x", "-1", "0".repeat(40)]) {
      const res = await fetch(`${stack.url}/api/jobs/${r.body.id}/logs?offset=${bad}`);
      assert.equal(res.status, 400, String(bad));
    }
    for (const bad of ["xml", "ndjson".repeat(4)]) {
      const res = await fetch(`${stack.url}/api/jobs/${r.body.id}/logs?format=${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal((await problem(res)).code, "bad_request");
    }
  });

  test("outputs are 409 not_ready before the end; outputs list has urls", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "sleep", seconds: 3 });
    const o = await fetch(`${stack.url}/api/jobs/${r.body.id}/outputs`);
    assert.equal(o.status, 409);
    assert.equal((await problem(o)).code, "not_ready");
    assert.equal((await fetch(`${stack.url}/api/jobs/${r.body.id}/outputs.zip`)).status, 409);
    const done = await waitFor(stack, r.body.id);
    assert.equal(done.state, "succeeded");
    const r2 = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok" });
    await waitFor(stack, r2.body.id);
    const list = await getJSON(stack, `/api/jobs/${r2.body.id}/outputs`);
    assert.equal(list.status, 200);
    const names = list.body.outputs.map((x) => x.url);
    assert.ok(names.includes(`/api/jobs/${r2.body.id}/outputs/nested/deeper/data.bin`));
        const missing = await fetch(`${stack.url}/api/jobs/${r2.body.id}/outputs/nope.txt`);
    assert.equal(missing.status, 404);
  });

  test("the outputs zip is built once, kept in the job dir, and sent by nginx", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok" });
    await waitFor(stack, r.body.id);
    const zpath = path.join(stack.data, "jobs", r.body.id, "outputs.zip");
    assert.ok(fs.existsSync(zpath), "built at collection");
    const built = fs.statSync(zpath);
    const a = await fetch(`${stack.url}/api/jobs/${r.body.id}/outputs.zip`);
    assert.equal(a.status, 200);
    assert.match(a.headers.get("content-disposition"), /labbox-.*-outputs\.zip/);
    assert.equal(Number(a.headers.get("content-length")), built.size, "a file, with its length");
    const bytes = Buffer.from(await a.arrayBuffer());
    assert.deepEqual(bytes, fs.readFileSync(zpath));
    // Ranges work, as for any file nginx sends.
    const part = await fetch(`${stack.url}/api/jobs/${r.body.id}/outputs.zip`, { headers: { Range: "bytes=0-3" } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(0, 4));
    // A job without one (older, or its build failed) gets it built at the first request.
    fs.unlinkSync(zpath);
    const b = await fetch(`${stack.url}/api/jobs/${r.body.id}/outputs.zip`);
    assert.equal(b.status, 200);
    assert.deepEqual(Buffer.from(await b.arrayBuffer()), bytes);
        assert.ok(fs.existsSync(zpath), "kept for the next request");
  });

  test("a signal ends failed/signal; cancel after the end is 409; delete removes it", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "kill-self", signal: 11 });
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "failed");
    assert.equal(job.reason, "signal");
    assert.equal(job.signal, 11);
    assert.match(job.detail, /SIGSEGV/);
    const c = await fetch(`${stack.url}/api/jobs/${r.body.id}/cancel`, { method: "POST" });
    assert.equal(c.status, 409);
        // 204, or 202 when its supervisor is still tearing the sandbox down: gone either way.
    const d = await fetch(`${stack.url}/api/jobs/${r.body.id}`, { method: "DELETE" });
    assert.ok([202, 204].includes(d.status), String(d.status));
    assert.equal((await fetch(`${stack.url}/api/jobs/${r.body.id}`)).status, 404);
  });

  test("the default agent turns a CSV into a downloadable report", async () => {
    const s = await startStack({ agentDir: path.join(ROOT, "scripts/agent") });
    try {
      const csv = fs.readFileSync(path.join(ROOT, "tests/data/experiment.csv"));
      const r = await upload(s, [{ name: "experiment.csv", data: csv }]);
      const job = await waitFor(s, r.body.id);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      const paths = job.outputs.map((o) => o.path);
      assert.ok(paths.includes("report.html") && paths.includes("summary.json"));
      assert.ok(paths.some((p) => p.endsWith(".svg")));
      const rep = await fetch(`${s.url}/api/jobs/${job.id}/outputs/report.html`);
      assert.equal(rep.status, 200);
      assert.equal(rep.headers.get("content-type"), "text/html");
      assert.match(rep.headers.get("content-disposition"), /^attachment/);
      assert.match(await rep.text(), /Welch/);
      const summary = await (await fetch(`${s.url}/api/jobs/${job.id}/outputs/summary.json`)).json();
      assert.ok(JSON.stringify(summary).includes("reaction_time_ms"));
      const recs = await logRecords(s, job.id);
      assert.ok(recs.some((x) => /backend local/.test(x.line)));
    } finally {
      await s.stop();
    }
  });
});

describe("queue, limits and recovery", () => {
  test("queue full answers 429 with Retry-After; queued jobs show their position", async () => {
    const s = await startStack({ config: { max_concurrent: 1, max_queue: 2 } });
    try {
      const a = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 30 });
      await waitFor(s, a.body.id, (j) => j.state === "running");
      const b = await upload(s, [{ name: "b.csv", data: CSV }], { mode: "ok" });
      const c = await upload(s, [{ name: "c.csv", data: CSV }], { mode: "ok" });
      assert.equal(b.body.queue_position, 1);
      assert.equal(c.body.queue_position, 2);
      const d = await upload(s, [{ name: "d.csv", data: CSV }], { mode: "ok" });
      assert.equal(d.status, 429);
      assert.equal(d.body.code, "queue_full");
      assert.ok(Number(d.headers.get("retry-after")) > 0);
      assertNothingStaged(s);
      // Cancel of a queued job is immediate; the next one moves up.
      const cb = await fetch(`${s.url}/api/jobs/${b.body.id}/cancel`, { method: "POST" });
      assert.equal(cb.status, 202);
      assert.equal((await cb.json()).state, "canceled");
      assert.equal((await getJSON(s, `/api/jobs/${c.body.id}`)).body.queue_position, 1);
      await fetch(`${s.url}/api/jobs/${a.body.id}/cancel`, { method: "POST" });
      const cj = await waitFor(s, c.body.id);
      assert.equal(cj.state, "succeeded");
    } finally {
      await s.stop();
    }
  });

  test("finished jobs are deleted after job_ttl; low disk answers 503", async () => {
    const s = await startStack({ config: { job_ttl: 1 } });
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      await waitFor(s, r.body.id);
      let status = 200;
      for (let i = 0; i < 100 && status === 200; i++) {
        await sleep(100);
        status = (await fetch(`${s.url}/api/jobs/${r.body.id}`)).status;
      }
      assert.equal(status, 404);
      assert.ok(!fs.existsSync(path.join(s.data, "jobs", r.body.id)));
    } finally {
      await s.stop();
    }
    const full = await startStack({ config: { disk_reserve_mb: 1 << 24 } });
    try {
      const r = await upload(full, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      assert.equal(r.status, 503);
      assert.equal(r.body.code, "unavailable");
      assert.ok(Number(r.headers.get("retry-after")) > 0);
      assertNothingStaged(full);
    } finally {
      await full.stop();
    }
  });

  test("a partial line is flushed while the agent still runs", async () => {
    const s = await startStack({ config: { log_flush_ms: 100 } });
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "partial", seconds: 2 });
      let seen = false;
      for (let i = 0; i < 60 && !seen; i++) {
        await sleep(50);
        seen = (await logRecords(s, r.body.id)).some((x) => x.line === "partial line");
      }
      assert.ok(seen, "the partial line arrived before the newline");
      const job = await waitFor(s, r.body.id);
      const out = (await logRecords(s, r.body.id)).filter((x) => x.stream === "stdout").map((x) => x.line);
      assert.deepEqual(out.slice(1, 3), ["partial line", " finished"]);
      assert.equal(job.state, "succeeded");
    } finally {
      await s.stop();
    }
  });

  test("a restart of serve while a job runs: the job finishes and its log is whole", async () => {
    const s = await startStack({});
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "slow", seconds: 3, interval: 0.1 });
      await waitFor(s, r.body.id, (j) => j.state === "running");
      await sleep(500);
      await s.stopServe();
      await sleep(700);
      await s.startServe();
      const job = await waitFor(s, r.body.id);
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      const ticks = (await logRecords(s, r.body.id)).filter((x) => /^tick /.test(x.line)).map((x) => Number(x.line.slice(5)));
      assert.ok(ticks.length > 10);
      assert.deepEqual(ticks, ticks.map((_, i) => i));
    } finally {
      await s.stop();
    }
  });

  test("a local job whose supervisor died is failed/interrupted, and its sandbox is gone", async () => {
    const s = await startStack({});
    try {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 60 });
      await waitFor(s, r.body.id, (j) => j.state === "running");
      const { spawnSync } = await import("node:child_process");
      assert.ok(killSupervisor(s, r.body.id), "its supervisor holds the job's lock");
      const job = await waitFor(s, r.body.id, undefined, 20000);
      assert.equal(job.state, "failed");
      assert.equal(job.reason, "interrupted");
      const left = spawnSync("pgrep", ["-f", "mode=sleep"]);
      assert.notEqual(left.status, 0, "no sandbox process survives");
      const ps = spawnSync("sh", ["-c", `ps ax | grep -c "[b]wrap.*${r.body.id}"`], { encoding: "utf8" });
      assert.equal(ps.stdout.trim(), "0");
      // Nothing of the lost sandbox is left: work dir, cgroups.
      // The recovery cleans up right after it wrote the terminal state.
      const work = path.join(s.dir, "sandboxes", workAlias(r.body.id));
      for (let i = 0; i < 50 && fs.existsSync(work); i++) await sleep(100);
      assert.ok(!fs.existsSync(work));
      for (const c of ["memory", "pids", "cpuacct"])
        assert.ok(!fs.existsSync(`/sys/fs/cgroup/${c}/labbox/${workAlias(r.body.id)}`), c);
    } finally {
      await s.stop();
    }
  });
});

// Status reads come from a cache checked against the record on every read (core/jobcache.h):
// a read that begins after a change must show it, while other clients keep the cache warm.
describe("status reads are never stale", () => {
  const RANK = { queued: 0, staging: 1, running: 2, collecting: 3 };
  const rank = (st) => RANK[st] ?? 4;
  const onDisk = (s, id) => JSON.parse(fs.readFileSync(path.join(s.data, "jobs", id, "job.json"), "utf8"));
  // warm: clients reading the job until stop() (the cache is hot the whole time).
  function warm(s, id) {
    let on = true;
    const loops = Array.from({ length: 4 }, async () => {
      while (on) await (await fetch(`${s.url}/api/jobs/${id}`)).arrayBuffer();
    });
    return async () => { on = false; await Promise.all(loops); };
  }
  let s;
  before(async () => { s = await startStack({ config: { max_concurrent: 1, max_queue: 10 } }); });
  after(async () => s?.stop());

  test("a read after the record changed shows the change, outputs included", async () => {
    const r = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "slow", seconds: 1, interval: 0.05 });
    const stop = warm(s, r.body.id);
    const seen = new Set();
    try {
      for (let rec = onDisk(s, r.body.id); ; rec = onDisk(s, r.body.id)) {
        const got = (await getJSON(s, `/api/jobs/${r.body.id}`)).body;
        assert.ok(rank(got.state) >= rank(rec.state), `read ${got.state} after the record said ${rec.state}`);
        seen.add(rec.state);
        if (rank(rec.state) === 4) {
          assert.equal(got.state, rec.state);
          assert.equal(got.finished_at, rec.finished_at);
          assert.ok(Array.isArray(got.outputs) && got.outputs.length > 0, JSON.stringify(got.outputs));
          break;
        }
      }
    } finally {
      await stop();
    }
    assert.ok(seen.has("running"), [...seen].join(","));
  });

  test("queue positions are live; cancel and delete show at once", async () => {
    const a = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 30 });
    await waitFor(s, a.body.id, (j) => j.state === "running");
    const b = await upload(s, [{ name: "b.csv", data: CSV }], { mode: "ok" });
    const c = await upload(s, [{ name: "c.csv", data: CSV }], { mode: "ok" });
    const stops = [warm(s, a.body.id), warm(s, b.body.id), warm(s, c.body.id)];
    try {
      assert.equal((await getJSON(s, `/api/jobs/${c.body.id}`)).body.queue_position, 2);
      // A queued job's log is empty, not missing (it is made when first opened).
      const ql = await fetch(`${s.url}/api/jobs/${c.body.id}/logs?format=ndjson`);
      assert.equal(ql.status, 200);
      assert.equal(ql.headers.get("log-offset"), "0");
      assert.equal(await ql.text(), "");
      // A queued job is canceled by the request itself: the next read says so.
      assert.equal((await fetch(`${s.url}/api/jobs/${b.body.id}/cancel`, { method: "POST" })).status, 202);
      const gb = (await getJSON(s, `/api/jobs/${b.body.id}`)).body;
      assert.equal(gb.state, "canceled");
      assert.equal(gb.queue_position, null);
      assert.equal((await getJSON(s, `/api/jobs/${c.body.id}`)).body.queue_position, 1);
      // A running one when its supervisor writes it: every read after the record says
      // canceled says canceled too.
      assert.equal((await fetch(`${s.url}/api/jobs/${a.body.id}/cancel`, { method: "POST" })).status, 202);
      for (let rec = onDisk(s, a.body.id); rec.state !== "canceled"; rec = onDisk(s, a.body.id)) await sleep(2);
      assert.equal((await getJSON(s, `/api/jobs/${a.body.id}`)).body.state, "canceled");
      // Deleted: the next read is 404, though the job was read a moment ago.
      const d = await fetch(`${s.url}/api/jobs/${b.body.id}`, { method: "DELETE" });
      assert.equal(d.status, 204);
      assert.equal((await fetch(`${s.url}/api/jobs/${b.body.id}`)).status, 404);
    } finally {
      for (const stop of stops) await stop();
    }
    await waitFor(s, c.body.id);
  });
});
