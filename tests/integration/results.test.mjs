// results: what issue 14 added to the API, through nginx + labbox (local backend): outputs shown
// inline (?view=1) with the headers of each type, full download names, the agent's parameter
// schema (GET /api/agent, 400 bad_params), folders' relative paths and their refusals, re-runs,
// downloading the inputs back (one file, inputs.zip) and expires_at.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CSV, LABBOX, TERMINAL as TERMINAL_STATES, TEST_AGENT, getJSON, logRecords, startStack, upload, waitFor } from "./harness.mjs";

const VIEW_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
  "font-src 'self' data:; media-src 'self'; frame-ancestors 'self'";
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==";
const PDF = Buffer.from("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n" +
  "trailer<</Root 1 0 R>>\n%%EOF\n").toString("base64");
// 100 two-byte characters: a 200-byte name, the longest a component may be.
const LONG_NAME = "é".repeat(100);

function assertNothingStaged(stack) {
  assert.deepEqual(fs.readdirSync(path.join(stack.data, "tmp")), []);
}

// A multipart body built by hand, so that every file name reaches labbox exactly as written.
async function rawUpload(stack, files, params) {
  const boundary = "----labboxtest" + Math.random().toString(16).slice(2);
  const parts = [];
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${f.name}"\r\n` +
      "Content-Type: text/csv\r\n\r\n"), Buffer.from(f.data), Buffer.from("\r\n"));
  }
  if (params !== undefined) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n${JSON.stringify(params)}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const res = await fetch(`${stack.url}/api/jobs`, {
    method: "POST", body: Buffer.concat(parts), headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
  });
  return { status: res.status, body: await res.json() };
}

// The agent of these tests with a parameter schema of its own.
function schemaAgent(schema) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-agent-"));
  fs.chmodSync(dir, 0o755);
  fs.copyFileSync(path.join(TEST_AGENT, "agent.py"), path.join(dir, "agent.py"));
  fs.writeFileSync(path.join(dir, "params.schema.json"), JSON.stringify(schema));
  return dir;
}

const SCHEMA = {
  title: "test agent", description: "does what mode says", type: "object", additionalProperties: false,
  properties: {
    mode: { type: "string", enum: ["ok", "tree", "exit", "write"], default: "ok", title: "Mode" },
    code: { type: "integer", minimum: 0, maximum: 255 },
    lines: { type: "integer", minimum: 0, maximum: 100 },
    files: { type: "array", items: { type: "string" } },
  },
};

describe("results", () => {
  let stack;
  before(async () => {
    stack = await startStack({ config: { wall_timeout: 30, job_ttl: 3600 } });
  });
  after(async () => stack?.stop());

  test("?view=1 shows what is safe to render inline, each type from its own nginx location", async () => {
    const files = {
      "report.html": "<!doctype html><meta charset=utf-8><p>report</p><script>document.title='ran'</script>",
      "charts/c.svg": "<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'><rect width='4' height='4'/></svg>",
      "data.csv": "a,b\n1,2\n", "data.tsv": "a\tb\n1\t2\n", "notes.txt": "hello\n", "summary.json": "{\"report\": \"report.html\"}",
      "run.py": "print('x')\n",
    };
    const b64 = { "pic.png": PNG, "doc.pdf": PDF, "blob.bin": Buffer.from([0, 1, 2, 255, 254]).toString("base64") };
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "write", files, b64 });
    assert.equal(r.status, 201);
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "succeeded");
    const list = (await getJSON(stack, `/api/jobs/${job.id}/outputs`)).body.outputs;
    const byPath = Object.fromEntries(list.map((o) => [o.path, o]));
    const want = {
      // path: [served type, nginx CSP of the view]
      "report.html": ["text/html", VIEW_CSP],
      "charts/c.svg": ["image/svg+xml", VIEW_CSP],
      "pic.png": ["image/png", VIEW_CSP],
      "data.csv": ["text/plain; charset=utf-8", VIEW_CSP],
      "data.tsv": ["text/plain; charset=utf-8", VIEW_CSP],
      "notes.txt": ["text/plain; charset=utf-8", VIEW_CSP],
      "summary.json": ["text/plain; charset=utf-8", VIEW_CSP],
      "run.py": ["text/plain; charset=utf-8", VIEW_CSP],
      "doc.pdf": ["application/pdf", "frame-ancestors 'self'"],
    };
    for (const [p, [type, csp]] of Object.entries(want)) {
      const o = byPath[p];
      assert.ok(o, `${p} is listed`);
      assert.equal(o.view_url, `${o.url}?view=1`, `${p} has a view_url`);
      const res = await fetch(`${stack.url}${o.view_url}`);
      assert.equal(res.status, 200, p);
      assert.equal(res.headers.get("content-type"), type, p);
      assert.equal(res.headers.get("content-disposition"), `inline; filename*=UTF-8''${encodeURIComponent(path.basename(p))}`, p);
      assert.equal(res.headers.get("content-security-policy"), csp, `${p}: exactly nginx's header, once`);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", p);
      assert.equal(res.headers.get("referrer-policy"), "no-referrer", p);
      assert.equal(res.headers.get("x-accel-redirect"), null);
      const body = Buffer.from(await res.arrayBuffer());
      const file = fs.readFileSync(path.join(stack.data, "jobs", job.id, "outputs", p));
      assert.deepEqual(body, file, `${p}: the file itself`);
      // Without ?view it is a download, sandboxed in case it is opened anyway.
      const dl = await fetch(`${stack.url}${o.url}`);
      assert.match(dl.headers.get("content-disposition"), /^attachment; /);
      assert.equal(dl.headers.get("content-security-policy"), "sandbox");
      await dl.arrayBuffer();
    }
    // Types that are not safe to show stay downloads, even when asked.
    assert.equal(byPath["blob.bin"].view_url, null);
    const bin = await fetch(`${stack.url}${byPath["blob.bin"].url}?view=1`);
    assert.equal(bin.status, 200);
    assert.match(bin.headers.get("content-disposition"), /^attachment; filename\*=UTF-8''blob\.bin$/);
    assert.equal(bin.headers.get("content-security-policy"), "sandbox");
    await bin.arrayBuffer();
    // view must be 1; anything else is a download.
    const other = await fetch(`${stack.url}${byPath["report.html"].url}?view=yes`);
    assert.match(other.headers.get("content-disposition"), /^attachment; /);
    await other.arrayBuffer();
    const head = await fetch(`${stack.url}${byPath["report.html"].view_url}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-security-policy"), VIEW_CSP);
  });

  test("a 200-byte non-ASCII output name downloads under its whole name", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }],
      { mode: "write", files: { [`dir/${LONG_NAME}`]: "long\n" } });
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "succeeded");
    const o = (await getJSON(stack, `/api/jobs/${job.id}/outputs`)).body.outputs.find((x) => x.path.startsWith("dir/"));
    assert.equal(Buffer.byteLength(path.basename(o.path)), 200);
    const res = await fetch(`${stack.url}${o.url}`);
    assert.equal(res.status, 200);
    const cd = res.headers.get("content-disposition");
    const m = /^attachment; filename\*=UTF-8''(.+)$/.exec(cd);
    assert.ok(m, cd);
    assert.equal(m[1].length, 600, "every byte percent-encoded");
    assert.equal(decodeURIComponent(m[1]), LONG_NAME, "the whole name, valid UTF-8");
    assert.equal(await res.text(), "long\n");
  });

  test("files of a dropped folder keep their paths under inputs/", async () => {
    const files = [
      { name: "run1/a.csv", data: CSV },
      { name: "run1/day 2/b.csv", data: "x,y\n1,2\n" },
      { name: "top.csv", data: "x\n1\n" },
    ];
    const r = await rawUpload(stack, files, { mode: "tree" });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(r.body.inputs.map((i) => i.name), ["run1/a.csv", "run1/day 2/b.csv", "top.csv"]);
    const job = await waitFor(stack, r.body.id);
    assert.equal(job.state, "succeeded");
    const seen = (await logRecords(stack, job.id)).filter((x) => x.line.startsWith("input ")).map((x) => x.line).sort();
    assert.deepEqual(seen, ["input params.json 15", `input run1/a.csv ${CSV.length}`, "input run1/day 2/b.csv 8", "input top.csv 4"]);
    const dir = path.join(stack.data, "jobs", job.id, "inputs");
    assert.equal(fs.readFileSync(path.join(dir, "run1/day 2/b.csv"), "utf8"), "x,y\n1,2\n");
    assert.equal(fs.statSync(path.join(dir, "run1")).mode & 0o777, 0o755);
  });

  test("bad relative paths are refused with bad_filename naming the file, leaving nothing", async () => {
    const bad = [
      ["../x.csv", ". or .."], ["a/../x.csv", ". or .."], ["./x.csv", ". or .."], ["a/./x.csv", ". or .."],
      ["a//x.csv", "empty component"], ["/etc/x.csv", "absolute"], ["a\\x.csv", "backslash"],
      ["C:\\Users\\u\\x.csv", "backslash"], ["a/.hidden.csv", "dot"], ["a/x.csv/", "empty component"],
    ];
    for (const [name, why] of bad) {
      const r = await rawUpload(stack, [{ name: "ok.csv", data: CSV }, { name, data: CSV }]);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, "bad_filename", name);
      assert.equal(r.body.file, name, name);
      assert.ok(r.body.detail.includes(why), `${name}: ${r.body.detail}`);
      assertNothingStaged(stack);
    }
    // One name cannot be a file and a folder, in either order.
    for (const pair of [["a", "a/b.csv"], ["a/b.csv", "a"]]) {
      const r = await rawUpload(stack, pair.map((name) => ({ name, data: CSV })));
      assert.equal(r.status, 400);
      assert.equal(r.body.code, "bad_filename");
      assert.equal(r.body.file, pair[1]);
      assert.match(r.body.detail, /both a file and a folder/);
      assertNothingStaged(stack);
    }
    const twice = await rawUpload(stack, [{ name: "a/b.csv", data: CSV }, { name: "a/b.csv", data: CSV }]);
    assert.equal(twice.body.code, "bad_filename");
    assert.match(twice.body.detail, /used twice/);
    // params.json is the params part's only at the top.
    const nested = await rawUpload(stack, [{ name: "a/params.json", data: "{}" }], { mode: "ok" });
    assert.equal(nested.status, 201);
    await waitFor(stack, nested.body.id);
  });

  test("inputs download: one file, params.json, inputs.zip built once", async () => {
    const r = await rawUpload(stack, [{ name: "run1/a.csv", data: CSV }, { name: "b.csv", data: "x\n1\n" }], { mode: "ok" });
    const id = r.body.id;
    const one = await fetch(`${stack.url}/api/jobs/${id}/inputs/run1/a.csv`);
    assert.equal(one.status, 200);
    assert.equal(one.headers.get("content-type"), "text/csv");
    assert.equal(one.headers.get("content-disposition"), "attachment; filename*=UTF-8''a.csv");
    assert.equal(one.headers.get("content-security-policy"), "sandbox");
    assert.equal(one.headers.get("x-content-type-options"), "nosniff");
    assert.equal(await one.text(), CSV);
    const view = await fetch(`${stack.url}/api/jobs/${id}/inputs/run1/a.csv?view=1`);
    assert.equal(view.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(view.headers.get("content-security-policy"), VIEW_CSP);
    await view.arrayBuffer();
    const params = await fetch(`${stack.url}/api/jobs/${id}/inputs/params.json`);
    assert.equal(params.status, 200);
    assert.equal(params.headers.get("content-type"), "application/json");
    assert.deepEqual(await params.json(), { mode: "ok" });
    for (const p of ["nope.csv", "run1", "run1/nope/../../../job.json", "%2E%2E/job.json", "..%2Fjob.json", "run1/a.csv/"]) {
      const res = await fetch(`${stack.url}/api/jobs/${id}/inputs/${p}`);
      assert.equal(res.status, 404, p);
      await res.arrayBuffer();
    }
    const job = await waitFor(stack, id);
    const zpath = path.join(stack.data, "jobs", id, "inputs.zip");
    for (let i = 0; i < 100 && !fs.existsSync(zpath); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(fs.existsSync(zpath), "built by the supervisor at collection");
    const zip = await fetch(`${stack.url}/api/jobs/${id}/inputs.zip`);
    assert.equal(zip.status, 200);
    assert.equal(zip.headers.get("content-disposition"), `attachment; filename="labbox-${id}-inputs.zip"`);
    const bytes = Buffer.from(await zip.arrayBuffer());
    assert.deepEqual(bytes, fs.readFileSync(zpath));
    const tmp = path.join(stack.dir, "in.zip");
    fs.writeFileSync(tmp, bytes);
    const names = spawnSync("python3", ["-c", "import sys,zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))", tmp],
      { encoding: "utf8" }).stdout.trim().split("\n");
    assert.deepEqual(names, ["run1/a.csv", "b.csv", "params.json"]);
    assert.equal(job.state, "succeeded");
    // A job still running has its inputs zip built at the first request.
    const live = await upload(stack, [{ name: "c.csv", data: CSV }], { mode: "slow", seconds: 3 });
    const lz = await fetch(`${stack.url}/api/jobs/${live.body.id}/inputs.zip`);
    assert.equal(lz.status, 200);
    await lz.arrayBuffer();
    await waitFor(stack, live.body.id);
  });

  test("files are sent by nginx: ranges, conditional requests, and a file gone from the data dir", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "write", files: { "a.txt": "aaa\n", "b.txt": "bbb\n" } });
    const job = await waitFor(stack, r.body.id);
    const input = `${stack.url}/api/jobs/${job.id}/inputs/data.csv`;
    const part = await fetch(input, { headers: { range: "bytes=0-6" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 0-6/${Buffer.byteLength(CSV)}`);
    assert.equal(await part.text(), CSV.slice(0, 7));
    assert.equal((await fetch(input, { headers: { range: "bytes=999999-" } })).status, 416);
    const whole = await fetch(input, { method: "HEAD" });
    assert.ok(whole.headers.get("etag"));
    assert.equal((await fetch(input, { headers: { "if-none-match": whole.headers.get("etag") } })).status, 304);
    // Someone removes a listed output, or puts a symlink in its place: nginx's own page.
    const out = path.join(stack.data, "jobs", job.id, "outputs");
    fs.rmSync(path.join(out, "a.txt"));
    fs.rmSync(path.join(out, "b.txt"));
    fs.symlinkSync("/etc/hostname", path.join(out, "b.txt"));
    assert.equal((await fetch(`${stack.url}/api/jobs/${job.id}/outputs/a.txt`)).status, 404);
    assert.equal((await fetch(`${stack.url}/api/jobs/${job.id}/outputs/b.txt`)).status, 403);
  });

  test("expires_at: job_ttl after the end, null while live", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok" });
    assert.equal(r.body.expires_at, null);
    const job = await waitFor(stack, r.body.id);
    assert.equal(Date.parse(job.expires_at) - Date.parse(job.finished_at), 3600 * 1000);
  });

  test("re-run: the same inputs (linked), the old or new params, a new job", async () => {
    const a = await rawUpload(stack, [{ name: "run1/a.csv", data: CSV }], { mode: "tree" });
    const first = await waitFor(stack, a.body.id);
    const rerun = (id, body) => fetch(`${stack.url}/api/jobs/${id}/rerun`, {
      method: "POST", body, headers: body === undefined ? {} : { "content-type": "application/json" },
    });
    // No body: the old params.
    let res = await rerun(first.id);
    assert.equal(res.status, 201);
    assert.match(res.headers.get("location"), /^\/api\/jobs\/[a-z2-7]{26}$/);
    const same = await res.json();
    assert.notEqual(same.id, first.id);
    assert.deepEqual(same.inputs, first.inputs);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(stack.data, "jobs", same.id, "inputs/params.json"))), { mode: "tree" });
    const ino = (id) => fs.statSync(path.join(stack.data, "jobs", id, "inputs/run1/a.csv")).ino;
    assert.equal(ino(same.id), ino(first.id), "hard-linked, not copied");
    assert.equal((await waitFor(stack, same.id)).state, "succeeded");
    // New params.
    res = await rerun(first.id, JSON.stringify({ mode: "exit", code: 3 }));
    assert.equal(res.status, 201);
    const failed = await waitFor(stack, (await res.json()).id);
    assert.equal(failed.state, "failed");
    assert.equal(failed.exit_code, 3);
    // Refusals: not an object, too big, no such job, the wrong method.
    res = await rerun(first.id, "[1]");
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, "bad_request");
    res = await rerun("a".repeat(26), "{}");
    assert.equal(res.status, 404);
    await res.arrayBuffer();
    res = await fetch(`${stack.url}/api/jobs/${first.id}/rerun`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "POST");
    await res.arrayBuffer();
    assertNothingStaged(stack);
    // The old job can go: the new one keeps its inputs.
        const gone = await fetch(`${stack.url}/api/jobs/${first.id}`, { method: "DELETE" });
    assert.ok(gone.status === 204 || gone.status === 202, `${gone.status}`); // 202: still tearing down
    assert.equal(fs.readFileSync(path.join(stack.data, "jobs", same.id, "inputs/run1/a.csv"), "utf8"), CSV);
  });
});

describe("results with a parameter schema", () => {
  let stack;
  let agentDir;
  before(async () => {
    agentDir = schemaAgent(SCHEMA);
    stack = await startStack({ agentDir, config: { wall_timeout: 30 } });
  });
  after(async () => {
    await stack?.stop();
    fs.rmSync(agentDir, { recursive: true, force: true });
  });

  test("GET /api/agent returns the schema, its title and description", async () => {
    const r = await getJSON(stack, "/api/agent");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      title: "test agent", description: "does what mode says", params_schema: SCHEMA, params_max_bytes: 65536,
    });
  });

  test("params outside the schema are 400 bad_params naming the parameter, leaving nothing", async () => {
    const cases = [
      [{ mode: "fly" }, "mode", 'mode: must be one of "ok", "tree", "exit", "write"'],
      [{ code: 300 }, "code", "code: must be from 0 to 255"],
      [{ code: 2.5 }, "code", "code: must be an integer"],
      [{ lines: "3" }, "lines", "lines: must be an integer"],
      [{ files: ["a", 1] }, "files", "files: must be a list of strings"],
      [{ mode: null }, "mode", "mode: must be a string"],
      [{ colour: "red", mode: "ok" }, "colour", "colour: not a parameter of this agent (it has: mode, code, lines, files)"],
      [{ code: -1, mode: 3 }, "code", "code: must be from 0 to 255; mode: must be a string"],
    ];
    for (const [params, name, detail] of cases) {
      const r = await upload(stack, [{ name: "data.csv", data: CSV }], params);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, "bad_params");
      assert.equal(r.body.title, "Bad parameters");
      assert.equal(r.body.param, name);
      assert.equal(r.body.detail, detail);
      assert.equal(r.body.file, undefined);
      assertNothingStaged(stack);
    }
    const ok = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "exit", code: 0 });
    assert.equal(ok.status, 201);
    assert.equal((await waitFor(stack, ok.body.id)).state, "succeeded");
    // A re-run's new params pass the same check.
    const res = await fetch(`${stack.url}/api/jobs/${ok.body.id}/rerun`, { method: "POST", body: JSON.stringify({ code: 999 }) });
    assert.equal(res.status, 400);
    const b = await res.json();
    assert.equal(b.code, "bad_params");
    assert.equal(b.param, "code");
    assertNothingStaged(stack);
  });

  test("a schema outside the subset: check-config and serve refuse it", () => {
    const dir = schemaAgent({ type: "object", properties: { x: { type: "string", pattern: "a+" } } });
    try {
      const env = { ...stack.env, LABBOX_AGENT_DIR: dir };
      const r = spawnSync(LABBOX, ["check-config"], { env, encoding: "utf8" });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /params\.schema\.json in agent_dir is outside labbox's schema subset: property x: keyword\(s\) outside labbox's subset: pattern/);
      const s = spawnSync(LABBOX, ["serve"], { env: { ...env, LABBOX_LISTEN: path.join(dir, "x.sock") }, encoding: "utf8", timeout: 10000 });
      assert.equal(s.status, 2);
      assert.match(s.stderr, /outside labbox's schema subset/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("results: waiting for a job (?wait=)", () => {
  let stack;
  before(async () => {
    // Two request threads: waiters that held one each would stall everything else.
    stack = await startStack({ config: { wall_timeout: 60, threads: 2 } });
  });
  after(async () => stack?.stop());

  const timed = async (p) => {
    const t0 = Date.now();
    const res = await fetch(`${stack.url}${p}`);
    const body = await res.json();
    return { status: res.status, body, ms: Date.now() - t0 };
  };

  test("answers when the job ends, holding no request thread while it waits", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "slow", seconds: 3 });
    assert.equal(r.status, 201);
    const id = r.body.id;
    const waits = Array.from({ length: 8 }, () => timed(`/api/jobs/${id}?wait=30`));
    // Meanwhile the two threads answer everything else at once.
    await new Promise((res) => setTimeout(res, 500));
    for (let i = 0; i < 5; i++) {
      const h = await timed("/api/health");
      assert.equal(h.status, 200);
      assert.ok(h.ms < 2000, `health took ${h.ms} ms while 8 requests waited`);
      const plain = await timed(`/api/jobs/${id}`);
      assert.ok(!TERMINAL_STATES.includes(plain.body.state), "the job is still live");
    }
    for (const w of await Promise.all(waits)) {
      assert.equal(w.status, 200);
      assert.equal(w.body.state, "succeeded");
      assert.ok(w.ms < 25000, `a wait took ${w.ms} ms`);
      assert.ok(Array.isArray(w.body.outputs), "the whole job object, outputs included");
    }
  });

  test("answers after at most wait seconds, as the job is then", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "sleep", seconds: 30 });
    const w = await timed(`/api/jobs/${r.body.id}?wait=1`);
    assert.equal(w.status, 200);
    assert.ok(["queued", "staging", "running"].includes(w.body.state), w.body.state);
    assert.ok(w.ms >= 900 && w.ms < 5000, `wait=1 took ${w.ms} ms`);
    // wait=0, a finished job, and a wait longer than the cap answer as a plain GET would.
    const z = await timed(`/api/jobs/${r.body.id}?wait=0`);
    assert.ok(z.ms < 900);
    // Deleted while it waits: 404.
    const gone = timed(`/api/jobs/${r.body.id}?wait=999`);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal((await fetch(`${stack.url}/api/jobs/${r.body.id}`, { method: "DELETE" })).status, 202);
    const g = await gone;
    assert.equal(g.status, 404);
    assert.equal(g.body.code, "not_found");
    assert.ok(g.ms < 10000, `the deleted job's waiter took ${g.ms} ms`);
  });

  test("a finished job answers at once; a bad wait is 400", async () => {
    const r = await upload(stack, [{ name: "data.csv", data: CSV }], { mode: "ok" });
    const done = await timed(`/api/jobs/${r.body.id}?wait=30`);
    assert.ok(["succeeded", "queued", "staging", "running", "collecting"].includes(done.body.state));
    const ended = await waitFor(stack, r.body.id);
    const again = await timed(`/api/jobs/${r.body.id}?wait=30`);
    assert.equal(again.body.state, ended.state);
    assert.ok(again.ms < 1000, `a finished job's wait took ${again.ms} ms`);
    for (const bad of ["abc", "-1", "1.5", ""]) {
      const b = await timed(`/api/jobs/${r.body.id}?wait=${bad}`);
      assert.equal(b.status, 400, `wait=${bad}`);
      assert.equal(b.body.code, "bad_request");
    }
  });
});
