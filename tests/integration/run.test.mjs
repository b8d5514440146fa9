// run: `labbox run`, one job from the terminal, on the backend LABBOX_TEST_BACKEND names (ctest
// runs it as run_local, run_docker and run_modal): the log streamed as it happens, outputs in
// --out, the exit status of each end, Ctrl-C, the upload checks, the temporary data dir.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CSV, LABBOX, TEST_AGENT, backendService, stopServices } from "./harness.mjs";

const BACKEND = process.env.LABBOX_TEST_BACKEND || "local";
const LOCAL = BACKEND === "local";

// run: labbox run with args; resolves {code, stdout, stderr, lines: [{t, line}]} (stdout lines
// with the time they arrived). onLine(line, child) sees each stdout line as it comes.
function run(ctx, args, { env = {}, onLine } = {}) {
  return new Promise((resolve) => {
    const child = spawn(LABBOX, ["run", ...args], {
      cwd: ctx.dir, env: { ...ctx.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let partial = "";
    const lines = [];
    child.stdout.on("data", (d) => {
      stdout += d;
      partial += d;
      let i;
      while ((i = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        lines.push({ t: Date.now(), line });
        onLine?.(line, child);
      }
    });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, lines, end: Date.now() }));
  });
}

describe(`labbox run (${BACKEND})`, () => {
  const ctx = {};
  before(async () => {
    const svc = await backendService(BACKEND);
    ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-run-test-"));
    fs.chmodSync(ctx.dir, 0o711);
    ctx.tmp = path.join(ctx.dir, "tmp");
    fs.mkdirSync(ctx.tmp);
    fs.writeFileSync(path.join(ctx.dir, "data.csv"), CSV);
    fs.mkdirSync(path.join(ctx.dir, "run1/day 2"), { recursive: true });
    fs.writeFileSync(path.join(ctx.dir, "run1/a.csv"), CSV);
    fs.writeFileSync(path.join(ctx.dir, "run1/day 2/b.csv"), "x,y\n1,2\n");
    fs.writeFileSync(path.join(ctx.dir, "run1/.DS_Store"), "junk");
    ctx.env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME || "/root",
      TMPDIR: ctx.tmp,
      LABBOX_BACKEND: BACKEND,
      LABBOX_SANDBOX_DIR: path.join(ctx.dir, "sandboxes"),
      LABBOX_AGENT_DIR: TEST_AGENT,
      LABBOX_WALL_TIMEOUT: "60",
      ...svc.env,
    };
    for (const k of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "CI"]) if (process.env[k]) ctx.env[k] = process.env[k];
  });
  after(() => {
    if (ctx.dir && !process.env.LABBOX_KEEP_TEST_DIRS) fs.rmSync(ctx.dir, { recursive: true, force: true });
    stopServices();
  });

  const tmpEmpty = () => assert.deepEqual(fs.readdirSync(ctx.tmp), [], "the temporary data dir is gone");

  test("a job succeeds: the log on stdout in order, outputs in --out, exit 0", async () => {
    const r = await run(ctx, ["--params", '{"mode":"ok","lines":4}', "--out", "out-ok", "data.csv", "run1"]);
    assert.equal(r.code, 0, r.stderr);
    // stdout in its order; stderr (another pipe) may come anywhere after it began.
    const out = r.lines.map((x) => x.line).filter((l) => !l.startsWith("["));
    assert.deepEqual(out.slice(1), ["line 0", "line 1", "line 2", "line 3", "done"]);
    assert.match(out[0], new RegExp(`^test agent mode=ok backend=${BACKEND} job=[a-z2-7]{26}$`));
    assert.ok(r.lines.some((x) => x.line === "[stderr] to stderr"), r.stdout);
    assert.ok(r.lines.some((x) => x.line === "[labbox] state: succeeded"), r.stdout);
    const dir = path.join(ctx.dir, "out-ok");
    assert.equal(fs.readFileSync(path.join(dir, "result.txt"), "utf8"), "inputs: data.csv,params.json,run1\n");
    assert.deepEqual(fs.readFileSync(path.join(dir, "nested/deeper/data.bin")), Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256)));
    assert.match(r.stderr, /labbox: job [a-z2-7]{26}: 3 files, \d+ bytes, backend /);
    assert.match(r.stderr, /leaving out run1\/\.DS_Store/);
    assert.match(r.stderr, new RegExp(`job [a-z2-7]{26} succeeded; 3 output files in out-ok\\n$`));
    tmpEmpty();
  });

  test("a folder's files keep their paths; the default --out is labbox-<id>", async () => {
    const r = await run(ctx, ["--params", '{"mode":"tree"}', "run1"]);
    assert.equal(r.code, 0, r.stderr);
    const inputs = r.lines.map((x) => x.line).filter((l) => l.startsWith("input ")).sort();
    assert.deepEqual(inputs, ["input params.json 15", `input run1/a.csv ${CSV.length}`, "input run1/day 2/b.csv 8"]);
    const id = /job ([a-z2-7]{26}) succeeded/.exec(r.stderr)[1];
    assert.match(r.stderr, new RegExp(`0 output files in labbox-${id}`));
  });

  test("the log streams while the agent runs", async () => {
    const r = await run(ctx, ["--params", '{"mode":"slow","seconds":3}', "--out", "out-slow", "data.csv"]);
    assert.equal(r.code, 0, r.stderr);
    const first = r.lines.find((x) => x.line === "tick 0");
    assert.ok(first, r.stdout);
    assert.ok(r.end - first.t > 1500, `tick 0 came ${r.end - first.t} ms before the end`);
  });

  test("a failing agent: exit 1, the reason on stderr, the outputs it wrote", async () => {
    const r = await run(ctx, ["--params", '{"mode":"exit","code":3}', "--out", "out-fail", "data.csv"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /failed \(exit_nonzero\): the agent exited with code 3/);
    tmpEmpty();
  });

  test("Ctrl-C cancels the job, collects what the agent wrote, exit 5", async () => {
    let sent = false;
    const r = await run(ctx, ["--params", '{"mode":"slow","seconds":60,"early_output":true}', "--out", "out-cancel", "data.csv"], {
      onLine: (line, child) => {
        if (!sent && line === "tick 2") {
          sent = true;
          child.kill("SIGINT");
        }
      },
    });
    assert.ok(sent, r.stdout + r.stderr);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /canceling/);
    assert.ok(r.lines.some((x) => x.line === "[labbox] state: canceled (canceled by the user)"), r.stdout);
    assert.equal(fs.readFileSync(path.join(ctx.dir, "out-cancel/early.txt"), "utf8"), "written before the ticks\n");
    tmpEmpty();
  });

  test("a job over wall_timeout: exit 4", { skip: !LOCAL && "the wall clock is the same code on every backend" }, async () => {
    const r = await run(ctx, ["--params", '{"mode":"sleep","seconds":30}', "--out", "out-slowest", "data.csv"],
      { env: { LABBOX_WALL_TIMEOUT: "2" } });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /timed_out \(timeout\)/);
  });

  test("the upload checks: refused inputs and params exit 3 before any job runs", { skip: !LOCAL && "no backend involved" }, async () => {
    fs.writeFileSync(path.join(ctx.dir, ".hidden.csv"), CSV);
    fs.writeFileSync(path.join(ctx.dir, "a.exe"), Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(120)]));
    const agentDir = path.join(ctx.dir, "schema-agent");
    fs.mkdirSync(agentDir, { recursive: true });
    fs.copyFileSync(path.join(TEST_AGENT, "agent.py"), path.join(agentDir, "agent.py"));
    fs.writeFileSync(path.join(agentDir, "params.schema.json"), JSON.stringify({
      type: "object", additionalProperties: false, properties: { mode: { type: "string", enum: ["ok"] } },
    }));
    const cases = [
      [[".hidden.csv"], /refused \(bad_filename\): the file name "\.hidden\.csv" is not allowed: name starts with a dot/],
      [["a.exe"], /refused \(unsupported_type\): a\.exe is application\/[-\w]+, which this server does not accept/],
      [["--params", "[1]", "data.csv"], /refused \(bad_request\): params must be a JSON object/],
      [["--agent-dir", agentDir, "--params", '{"mode":"fly"}', "data.csv"], /refused \(bad_params\): mode: must be one of "ok"/],
      [["--params", "{}", "data.csv", "data.csv"], /refused \(bad_filename\): the file name "data\.csv" is used twice/],
    ];
    for (const [args, re] of cases) {
      const r = await run(ctx, ["--out", "never", ...args]);
      assert.equal(r.code, 3, `${args}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, "");
      assert.equal(fs.existsSync(path.join(ctx.dir, "never")), false);
      tmpEmpty();
    }
    const ok = await run(ctx, ["--agent-dir", agentDir, "--params", '{"mode":"ok"}', "--out", "out-schema", "data.csv"]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test("usage and configuration errors exit 2", { skip: !LOCAL && "no backend involved" }, async () => {
    fs.mkdirSync(path.join(ctx.dir, "full"), { recursive: true });
    fs.writeFileSync(path.join(ctx.dir, "full/x"), "x");
    for (const [args, re] of [
      [[], /usage: labbox run/],
      [["--nope", "data.csv"], /usage: labbox run/],
      [["--out", "full", "data.csv"], /--out full must be an empty folder/],
      [["missing.csv"], /cannot read missing\.csv/],
      [["--backend", "nope", "data.csv"], /configuration error: .*backend.*nope/],
    ]) {
      const r = await run(ctx, args);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    tmpEmpty();
  });

  test("with data_dir configured the job stays there", { skip: !LOCAL && "no backend involved" }, async () => {
    const data = path.join(ctx.dir, "data");
    const r = await run(ctx, ["--params", '{"mode":"ok"}', "--out", "out-kept", "data.csv"], { env: { LABBOX_DATA_DIR: data } });
    assert.equal(r.code, 0, r.stderr);
    const id = /job ([a-z2-7]{26}) succeeded/.exec(r.stderr)[1];
    const job = JSON.parse(fs.readFileSync(path.join(data, "jobs", id, "job.json"), "utf8"));
    assert.equal(job.state, "succeeded");
    assert.ok(fs.existsSync(path.join(data, "jobs", id, "outputs/result.txt")));
  });
});
