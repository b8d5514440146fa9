// kernel: the kernel surface and shared per-user resources an agent must not reach (issue 9,
// "Kernel surface"). Walls: the seccomp program and /proc masks (sandbox_local_args.c),
// fail-closed cgroups with a CPU limit (sandbox_local_cgroup.c), per-job uids
// (sandbox_walls.c).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { attack, attackerStack, fs, getJSON, line, upload, waitFor, workAlias, CSV } from "./hostile.mjs";

describe("kernel surface", () => {
  let s;
  before(async () => {
    s = await attackerStack({ wall_timeout: 60, max_concurrent: 2 });
  });
  after(async () => s?.stop());

  test("network off: only AF_UNIX sockets; AF_VSOCK, AF_INET, netlink, packet get EAFNOSUPPORT", async () => {
    const { lines } = await attack(s, { attack: "sockets" });
    assert.ok(lines.includes("socket AF_UNIX ok"), lines.join("\n"));
    assert.ok(lines.includes("socketpair AF_UNIX ok"), lines.join("\n"));
    for (const fam of ["AF_VSOCK", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"])
      assert.ok(lines.includes(`socket ${fam} EAFNOSUPPORT`), `${fam}:\n${lines.join("\n")}`);
  });

  test("/proc does not tell the host's boot arguments, modules or keys", async () => {
    const paths = ["/proc/cmdline", "/proc/modules", "/proc/keys", "/proc/kallsyms"].filter((p) => fs.existsSync(p));
    const { lines } = await attack(s, { attack: "read", paths });
    for (const p of paths) {
      const l = line(lines, `read ${p} `);
      assert.ok(l && !/ [1-9]\d*$/.test(l), `${p}: ${l}`);
    }
  });

  test("a long agent_command reaches the agent whole", async () => {
    const args = Array.from({ length: 150 }, (_, i) => `arg${i}`);
    const t = await attackerStack({ agent_command: `python3 agent.py ${args.join(" ")}` });
    try {
      const { lines } = await attack(t, { attack: "argv" });
      assert.ok(lines.includes("argc 151 last arg149"), lines.join("\n"));
    } finally {
      await t.stop();
    }
  });

  test("a fork bomb stops at pids", async () => {
    const t = await attackerStack({ pids: 64 });
    try {
      const { lines } = await attack(t, { attack: "fork-bomb", seconds: 5 });
      const [, n] = line(lines, "forks ").split(" ");
      assert.ok(Number(n) < 64, lines.join("\n"));
    } finally {
      await t.stop();
    }
  });

  test("cpus caps the CPU time a job gets", async () => {
    const t = await attackerStack({ cpus: "0.25" });
    try {
      const r = await upload(t, [{ name: "a.csv", data: CSV }], { attack: "cpu-burn", procs: 2, seconds: 3 });
      await waitFor(t, r.body.id, (j) => j.state === "running");
      // The quota is in the job's cgroup while it runs (v1 CFS quota or v2 cpu.max).
      const v1 = `/sys/fs/cgroup/cpu/labbox/${workAlias(r.body.id)}/cpu.cfs_quota_us`;
      const v2 = `/sys/fs/cgroup/labbox/${workAlias(r.body.id)}/cpu.max`;
      const quota = fs.existsSync(v1) ? fs.readFileSync(v1, "utf8").trim()
        : fs.existsSync(v2) ? fs.readFileSync(v2, "utf8").trim().split(" ")[0] : "none";
      assert.equal(quota, "25000", "a quarter of a 100 ms period");
      const job = await waitFor(t, r.body.id);
      assert.equal(job.state, "succeeded");
      // 2 spinning processes for 3 s with a quarter CPU: at most about 0.75 s of CPU (an upper
      // bound, which load on the machine cannot push over).
      assert.ok(job.usage.cpu_ms <= 0.25 * job.usage.wall_ms + 300, JSON.stringify(job.usage));
    } finally {
      await t.stop();
    }
  });

  test("two jobs at once run as different uids of the range, neither root nor nobody", async () => {
    const a = upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami", seconds: 2 });
    const b = upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami", seconds: 2 });
    const ids = (await Promise.all([a, b])).map((r) => r.body.id);
    const uids = [];
    for (const id of ids) {
      await waitFor(s, id);
      const lines = (await (await fetch(`${s.url}/api/jobs/${id}/logs?format=ndjson`)).text())
        .split("\n").filter(Boolean).map((l) => JSON.parse(l).line);
      const w = line(lines, "uid ").split(" ");
      assert.equal(w[1], w[5], "the workspace belongs to the job's uid");
      uids.push(Number(w[1]));
    }
    assert.notEqual(uids[0], uids[1]);
    for (const u of uids) assert.ok(u >= 1879048192 && u !== 65534, String(u));
  });

  test("a job holding every inotify instance does not starve the next", async () => {
    const hog = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "inotify", hold: 6 });
    await waitFor(s, hog.body.id, (j) => j.state === "running");
    await new Promise((res) => setTimeout(res, 1500));
    const { lines } = await attack(s, { attack: "inotify" });
    const [, n, , why] = line(lines, "inotify ").split(" ");
    assert.ok(Number(n) >= 100, `the second job got ${n} inotify instances (${why})`);
    await waitFor(s, hog.body.id);
  });
});

describe("limits fail closed", () => {
  // This host's cgroup v2 hierarchy (hybrid mode) has no memory or pids controller: exactly the
  // host where an agent used to run without those limits.
  const v2 = "/sys/fs/cgroup/unified";
  const hybrid = fs.existsSync(`${v2}/cgroup.controllers`) &&
    !/\bmemory\b/.test(fs.readFileSync(`${v2}/cgroup.controllers`, "utf8"));

  test("a limit the host cannot apply makes the backend unusable, and says which", { skip: !hybrid && "no v2 hierarchy without memory here" }, async () => {
    const t = await attackerStack({ cgroup_root: v2 });
    try {
      let h;
      for (let i = 0; i < 100; i++) {
        h = (await getJSON(t, "/api/health")).body;
        if (h.backend_ok === false) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(h.backend_ok, false, JSON.stringify(h));
      assert.match(JSON.stringify(h), /memory/);
      const r = await upload(t, [{ name: "a.csv", data: CSV }], { attack: "whoami" });
      if (r.status === 201) {
        const job = await waitFor(t, r.body.id);
        assert.equal(job.state, "failed");
        assert.match(job.detail, /cannot enforce memory/);
      } else {
        assert.equal(r.status, 503);
      }
    } finally {
      await t.stop();
    }
  });

  test("allow_unenforced lets the operator run without them, on the rlimit fallbacks", { skip: !hybrid && "no v2 hierarchy without memory here" }, async () => {
    const t = await attackerStack({ cgroup_root: v2, allow_unenforced: "memory,pids,cpus" });
    try {
      const { job } = await attack(t, { attack: "whoami" });
      assert.equal(job.state, "succeeded", JSON.stringify(job));
    } finally {
      await t.stop();
    }
  });
});
