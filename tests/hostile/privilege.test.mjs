// privilege: labbox's own privileges, as its service unit gives them (issue 9, "labbox and
// nginx run as root"). labbox runs as its own user with exactly the capabilities of
// labbox.service; the local backend decides from those capabilities, not from being root; none
// of them reaches an agent, a request thread or libmagic. Walls: util/caps.c, serve.c (per-thread
// drop), sandbox_local.c (the child), jobs/typer.c.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  UNIT_CAPS, attack, attackerStack, fs, getJSON, line, loopsUnder, path, serviceUser, threadCaps,
  upload, waitFor, workAlias, CSV,
} from "./hostile.mjs";

const ZERO = "0000000000000000";

async function health(s, pred) {
  let h;
  for (let i = 0; i < 100; i++) {
    h = (await getJSON(s, "/api/health")).body;
    if (pred(h)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return h;
}

// The agent reports the capability sets of every process in its sandbox: all must be empty.
function assertNoCaps(lines) {
  const caps = lines.filter((l) => l.startsWith("caps "));
  assert.ok(caps.length >= 1, lines.join("\n"));
  for (const l of caps) {
    const [, pid, ...sets] = l.split(" ");
    assert.deepEqual(sets, [ZERO, ZERO, ZERO, ZERO, ZERO], `process ${pid} in the sandbox: ${l}`);
  }
}

describe("labbox as its own user with the unit's capabilities", () => {
  let user, s;
  before(async () => {
    user = serviceUser();
    s = await attackerStack({ wall_timeout: 60, workspace_max_mb: 64, log_level: "debug" },
      { runAs: user.name, caps: UNIT_CAPS });
  });
  after(async () => {
    await s?.stop();
    user?.remove();
  });

  test("every wall is up: the job's own uid, its cgroup limits, its workspace filesystem", async () => {
    const h = await health(s, (x) => x.backend_ok !== undefined);
    assert.equal(h.backend_ok, true, JSON.stringify(h));
    const r = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami", seconds: 3 });
    await waitFor(s, r.body.id, (j) => j.state === "running");
    await new Promise((res) => setTimeout(res, 500));
    const alias = workAlias(r.body.id);
    const v1 = `/sys/fs/cgroup/memory/labbox/${alias}/memory.limit_in_bytes`;
    const v2 = `/sys/fs/cgroup/labbox/${alias}/memory.max`;
    const mem = fs.existsSync(v1) ? fs.readFileSync(v1, "utf8") : fs.readFileSync(v2, "utf8");
    assert.equal(Number(mem), 1024 * 1024 * 1024, "memory_mb in the job's cgroup");
    assert.equal(loopsUnder(path.join(s.dir, "sandboxes")), 1, "the job has its workspace filesystem");
    const job = await waitFor(s, r.body.id);
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    const lines = (await (await fetch(`${s.url}/api/jobs/${r.body.id}/logs?format=ndjson`)).text())
      .split("\n").filter(Boolean).map((l) => JSON.parse(l).line);
    const w = line(lines, "uid ").split(" ");
    assert.ok(Number(w[1]) >= 1879048192, `the agent's uid ${w[1]} is one of the range`);
    assert.equal(w[1], w[5], "the workspace belongs to it");
    const full = await attack(s, { attack: "fill-disk", mb: 200 });
    assert.equal(full.job.reason, "disk_limit", JSON.stringify(full.job));
  });

  test("no capability reaches the agent: every set of every process in the sandbox is empty", async () => {
    const { job, lines } = await attack(s, { attack: "caps" });
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assertNoCaps(lines);
  });

  test("request threads hold none; only the dispatcher keeps them, for the supervisors", async () => {
    const threads = threadCaps(s.serve.pid);
    const holding = threads.filter(([, prm]) => prm !== ZERO);
    assert.ok(threads.length > 10, `${threads.length} threads`);
    assert.equal(holding.length, 1, JSON.stringify(threads));
  });

  test("libmagic types the agent's outputs as nobody, without capabilities", async () => {
    const { job } = await attack(s, { attack: "bad-names" });
    assert.ok(job.outputs.some((o) => o.path === "plain.txt"), JSON.stringify(job));
    const m = s.log().match(/typer: pid \d+ types outputs as uid (\d+), capabilities (\S+)/);
    assert.ok(m, "the typer reports how it runs");
    assert.equal(m[1], "65534");
    assert.equal(m[2], "0");
  });
});

describe("labbox as root", () => {
  let s;
  before(async () => {
    s = await attackerStack({ log_level: "debug" });
  });
  after(async () => s?.stop());

  test("no capability reaches the agent", async () => {
    const { lines } = await attack(s, { attack: "caps" });
    assertNoCaps(lines);
  });

  test("request threads hold none", async () => {
    const holding = threadCaps(s.serve.pid).filter(([, prm]) => prm !== ZERO);
    assert.equal(holding.length, 1, JSON.stringify(threadCaps(s.serve.pid)));
  });

  test("libmagic types outputs as nobody", async () => {
    await attack(s, { attack: "bad-names" });
    const m = s.log().match(/typer: pid \d+ types outputs as uid (\d+), capabilities (\S+)/);
    assert.ok(m && m[1] === "65534" && m[2] === "0", m ? m[0] : "no typer line");
  });
});

describe("without one of the unit's capabilities", () => {
  test("the local backend is unusable and names the capability it lacks", async () => {
    const user = serviceUser();
    const s = await attackerStack({}, { runAs: user.name, caps: UNIT_CAPS.filter((c) => c !== "kill") });
    try {
      const h = await health(s, (x) => x.backend_ok === false);
      assert.equal(h.backend_ok, false, JSON.stringify(h));
      assert.match(h.backend_error, /CAP_KILL/);
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami" });
      const job = await waitFor(s, r.body.id);
      assert.equal(job.state, "failed");
      assert.match(job.detail, /lacks CAP_KILL/);
    } finally {
      await s.stop();
      user.remove();
    }
  });
});

describe("without loop devices (disk in allow_unenforced)", () => {
  test("what the agent left, whatever its modes and sticky bits, goes with the job", async () => {
    const user = serviceUser();
    const s = await attackerStack({ allow_unenforced: "disk" },
      { runAs: user.name, caps: UNIT_CAPS, devicesDeny: ["c 10:237 rwm", "b 7:* rwm"] });
    try {
      const { id, job } = await attack(s, { attack: "locked-outputs" });
      assert.equal(job.state, "succeeded", JSON.stringify(job));
      assert.deepEqual(job.outputs.map((o) => o.path).sort(), ["closed/inside.txt", "locked.txt", "sticky/s.txt"]);
      const work = path.join(s.dir, "sandboxes", workAlias(id));
      for (let i = 0; i < 50 && fs.existsSync(work); i++) await new Promise((res) => setTimeout(res, 100));
      assert.ok(!fs.existsSync(work), spawnSync("find", [work, "-ls"], { encoding: "utf8" }).stdout);
    } finally {
      await s.stop();
      user.remove();
    }
  });
});
