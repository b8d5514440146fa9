// fulldisk: the host's disk fills up under running jobs (issue 9, "A full disk is
// misreported"): not the job's own workspace (that is disk_limit, disk.test.mjs) but the data
// dir, filled by a log or by uploads. A job's state stays writable (core/jobstore.c keeps a
// spare record's worth of blocks for every unfinished job), it ends as failed/host_disk_full
// (core/supervisor.c), never failed/interrupted and never stuck unfinished. The data dir is a
// small ext4 filesystem of the test's own, loop-mounted.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import os from "node:os";
import { attackerStack, fs, path, upload, waitFor, CSV } from "./hostile.mjs";
import { requireTool } from "../integration/harness.mjs";

const MB = 24;

describe("the host's disk fills up", () => {
  let tmp, mnt, s;
  before(async () => {
    requireTool(spawnSync("sh", ["-c", "command -v mkfs.ext4 && command -v mount"]).status === 0, "mkfs.ext4, mount");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-full-"));
    fs.chmodSync(tmp, 0o711);
    const img = path.join(tmp, "data.img");
    mnt = path.join(tmp, "data");
    fs.mkdirSync(mnt);
    fs.writeFileSync(img, "");
    fs.truncateSync(img, MB << 20);
    const mk = spawnSync("mkfs.ext4", ["-q", "-F", "-m", "0", "-O", "^has_journal", img], { encoding: "utf8" });
    assert.equal(mk.status, 0, mk.stderr);
    const m = spawnSync("mount", ["-o", "loop", img, mnt], { encoding: "utf8" });
    assert.equal(m.status, 0, m.stderr);
    s = await attackerStack({
      log_max_bytes: "1G", log_line_max: 4096, max_file_bytes: "64M", max_job_bytes: "64M",
      disk_reserve_mb: 0, wall_timeout: 120,
    }, { dataDir: mnt, maxBody: "70m" });
  });
  after(async () => {
    await s?.stop();
    if (mnt) spawnSync("umount", ["-l", mnt]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const free = () => {
    const st = fs.statfsSync(mnt);
    return st.bavail * st.bsize;
  };

  test("a log that fills it: the job ends failed/host_disk_full, its record written", async () => {
    const r = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "print", lines: 60000, width: 1000 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await waitFor(s, r.body.id, undefined, 90000);
    assert.equal(job.state, "failed", JSON.stringify(job));
    assert.equal(job.reason, "host_disk_full", JSON.stringify(job));
    assert.match(job.detail, /disk is full/);
    // Deleting it gives the space back.
    assert.ok([202, 204].includes((await fetch(`${s.url}/api/jobs/${r.body.id}`, { method: "DELETE" })).status));
    for (let i = 0; i < 300 && free() < (MB - 4) << 20; i++) await new Promise((res) => setTimeout(res, 100));
    assert.ok(free() >= (MB - 4) << 20, `only ${free()} bytes free after the delete`);
  });

  test("uploads and a filler take the rest while a job runs: it ends failed/host_disk_full", async () => {
    const r = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "write-output", seconds: 4, mb: 2 });
    assert.equal(r.status, 201);
    await waitFor(s, r.body.id, (j) => j.state === "running");
    // Other people's uploads fill the disk until the server refuses them...
    for (let i = 0; i < 8; i++) {
      const big = await upload(s, [{ name: `big${i}.csv`, data: "x,y\n".repeat(1 << 20) }]);
      if (big.status !== 201) break;
    }
    // ... and whatever is left goes too.
    spawnSync("dd", ["if=/dev/zero", `of=${path.join(mnt, "filler")}`, "bs=64k"], { encoding: "utf8" });
    assert.ok(free() < 64 << 10, `still ${free()} bytes free`);
    const job = await waitFor(s, r.body.id, undefined, 60000);
    assert.equal(job.state, "failed", JSON.stringify(job));
    assert.equal(job.reason, "host_disk_full", JSON.stringify(job));
    // With space again, jobs run as ever.
    fs.rmSync(path.join(mnt, "filler"));
    const ok = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami" });
    assert.equal((await waitFor(s, ok.body.id)).state, "succeeded");
  });
});
