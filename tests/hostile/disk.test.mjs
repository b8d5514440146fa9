// disk: an agent must not take the host's disk or inodes, nor leave anything behind
// (issue 9, "Disk and inodes"). Walls: the per-job ext4 workspace (sandbox_local_fs.c) and
// fs_rmtree_at (util/fsutil.c).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { attack, attackerStack, fs, killSupervisor, line, loopsUnder, path, waitFor, workAlias, upload, CSV } from "./hostile.mjs";

describe("disk and inodes", () => {
  let s;
  before(async () => {
    s = await attackerStack({ workspace_max_mb: 64, workspace_max_files: 2000, wall_timeout: 60 });
  });
  after(async () => s?.stop());

  test("writing without end stops at workspace_max_mb with ENOSPC; the job fails disk_limit, outputs kept", async () => {
    const { job, lines } = await attack(s, { attack: "fill-disk", mb: 4096 });
    const w = line(lines, "wrote ");
    assert.ok(w, lines.join("\n"));
    const [, mb, , why] = w.split(" ");
    assert.equal(why, "ENOSPC", w);
    assert.ok(Number(mb) <= 64, `wrote ${mb} MiB with a cap of 64`);
    assert.equal(job.state, "failed", JSON.stringify(job));
    assert.equal(job.reason, "disk_limit", JSON.stringify(job));
    assert.deepEqual(job.outputs.map((o) => o.path), ["before.txt"]);
  });

  test("/tmp counts against the same cap", async () => {
    const { job, lines } = await attack(s, { attack: "fill-disk", dir: "/tmp", mb: 4096 });
    const [, mb, , why] = line(lines, "wrote ").split(" ");
    assert.equal(why, "ENOSPC");
    assert.ok(Number(mb) <= 64, `wrote ${mb} MiB into /tmp with a cap of 64`);
    assert.equal(job.reason, "disk_limit");
  });

  test("an agent that copes with a full disk succeeds", async () => {
    const { job, lines } = await attack(s, { attack: "fill-disk", mb: 4096, cope: true });
    assert.ok(lines.includes("coped"), lines.join("\n"));
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.outputs.map((o) => o.path), ["after.txt", "before.txt"]);
  });

  test("creating files without end stops at workspace_max_files", async () => {
    const { job, lines } = await attack(s, { attack: "fill-inodes" });
    const [, n, , why] = line(lines, "files ").split(" ");
    assert.equal(why, "ENOSPC", lines.join("\n"));
    assert.ok(Number(n) <= 2000, `created ${n} files with a cap of 2000`);
    assert.equal(job.reason, "disk_limit");
  });

  test("a tree deeper than 64 levels is removed with the job; no loop device or mount is left", async () => {
    const { id, job, lines } = await attack(s, { attack: "deep-tree", depth: 200, kb: 64 });
    assert.ok(lines.includes("deep 200"), lines.join("\n"));
    assert.equal(job.state, "succeeded");
    // The supervisor cleans up right after it wrote the terminal state.
    const work = path.join(s.dir, "sandboxes", workAlias(id));
    for (let i = 0; i < 50 && (fs.existsSync(work) || loopsUnder(path.join(s.dir, "sandboxes")) > 0); i++)
      await new Promise((res) => setTimeout(res, 100));
    assert.ok(!fs.existsSync(work), "the work dir is gone");
    assert.equal(loopsUnder(path.join(s.dir, "sandboxes")), 0);
    const mounts = fs.readFileSync("/proc/self/mountinfo", "utf8");
    assert.ok(!mounts.includes(path.join(s.dir, "sandboxes")), "nothing mounted there");
  });

  test("a supervisor killed while its agent runs leaves no mount, loop device or work dir behind", async () => {
    const r = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami", seconds: 30 });
    await waitFor(s, r.body.id, (j) => j.state === "running");
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(loopsUnder(path.join(s.dir, "sandboxes")), 1, "the job has its loop device");
    assert.ok(killSupervisor(s, r.body.id), "its supervisor holds the job's lock");
    const job = await waitFor(s, r.body.id, undefined, 30000);
    assert.equal(job.reason, "interrupted");
    for (let i = 0; i < 50 && loopsUnder(path.join(s.dir, "sandboxes")) > 0; i++)
      await new Promise((res) => setTimeout(res, 100));
        assert.equal(loopsUnder(path.join(s.dir, "sandboxes")), 0, "the loop device detached itself");
    // The recovering supervisor writes the terminal state first, then removes the work dir.
    const work = path.join(s.dir, "sandboxes", workAlias(r.body.id));
    for (let i = 0; i < 100 && fs.existsSync(work); i++) await new Promise((res) => setTimeout(res, 100));
    assert.ok(!fs.existsSync(work), "the work dir is removed");
  });
});

describe("left-overs", () => {
  test("serve removes work dirs of jobs that are gone or finished, at any depth", async () => {
    const s = await attackerStack({});
    try {
      // A work dir as a crashed host would leave it: a job id nobody claims, 100 levels deep.
      const id = "a".repeat(26);
      let d = path.join(s.dir, "sandboxes", id);
      fs.mkdirSync(d, { recursive: true });
      const top = d;
      for (let i = 0; i < 100; i++) {
        d = path.join(d, "d");
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, "f"), "x");
      }
      const old = new Date(Date.now() - 3600e3);
      fs.utimesSync(top, old, old);
      await s.stopServe();
      await s.startServe();
      for (let i = 0; i < 100 && fs.existsSync(top); i++) await new Promise((res) => setTimeout(res, 100));
      assert.ok(!fs.existsSync(top), "the orphaned work dir was reaped");
    } finally {
      await s.stop();
    }
  });
});
