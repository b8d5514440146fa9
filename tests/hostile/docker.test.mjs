// docker: the hostile suite's attacks where the docker backend has the same surface (issue 9,
// "on docker where the backend has the same surface"), against podman's Docker-compatible
// service. Walls: sandbox_docker_walls.c (seccomp profile, NanoCpus, the sized /tmp, the
// writable layer's cap), sandbox_walls.c (a uid per job from the local backend's range).
// docs/sandbox.md's table says what the engine cannot do (podman ignores MaskedPaths, refuses
// nr_inodes= and, on overlay over ext4, StorageOpt size=).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { attack, attackerStack, getJSON, line, upload, waitFor, CSV } from "./hostile.mjs";
import { backendService, logRecords, stopServices } from "../integration/harness.mjs";

const DOCKER = { backend: "docker" };
after(() => stopServices());

describe("docker: kernel surface and shared resources", () => {
  let s;
  before(async () => {
    await backendService("docker");
    s = await attackerStack({ wall_timeout: 60, max_concurrent: 2, workspace_max_mb: 32, memory_mb: 256 }, DOCKER);
  });
  after(async () => s?.stop());

  test("network off: only AF_UNIX sockets; AF_VSOCK, AF_INET, netlink, packet get EAFNOSUPPORT", async () => {
    const { job, lines } = await attack(s, { attack: "sockets" });
    assert.equal(job.state, "succeeded", JSON.stringify(job));
    for (const fam of ["AF_VSOCK", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"]) {
      assert.equal(line(lines, `socket ${fam} `), `socket ${fam} EAFNOSUPPORT`, lines.join("\n"));
      assert.equal(line(lines, `socketpair ${fam} `), `socketpair ${fam} EAFNOSUPPORT`);
    }
    assert.equal(line(lines, "socket AF_UNIX "), "socket AF_UNIX ok");
  });

  test("the local filter's denied system calls fail with EPERM; no nested user namespaces", async () => {
    const { lines } = await attack(s, { attack: "denied" });
    for (const name of ["keyctl", "bpf", "io_uring_setup", "perf_event_open", "userfaultfd", "ptrace"])
      assert.equal(line(lines, `${name} `), `${name} EPERM`, lines.join("\n"));
    assert.equal(line(lines, "unshare-user "), "unshare-user EPERM");
  });

  test("no capability: every set of every process in the container is empty", async () => {
    const { lines } = await attack(s, { attack: "caps" });
    const caps = lines.filter((l) => l.startsWith("caps "));
    assert.ok(caps.length >= 1, lines.join("\n"));
    for (const l of caps) assert.match(l, /^caps \d+( 0{16}){5}$/);
  });

  test("/tmp holds workspace_max_mb, then ENOSPC", async () => {
    const { lines } = await attack(s, { attack: "fill-disk", dir: "/tmp", mb: 200 });
    const [, n, , why] = line(lines, "wrote ").split(" ");
    assert.equal(why, "ENOSPC", lines.join("\n"));
    assert.ok(Number(n) <= 32 && Number(n) >= 24, `wrote ${n} MiB into a 32 MiB /tmp`);
  });

  test("two jobs at once run as different uids of the range, neither root nor nobody", async () => {
    const ids = [];
    for (let i = 0; i < 2; i++)
      ids.push((await upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami", seconds: 2 })).body.id);
    const uids = [];
    for (const id of ids) {
      await waitFor(s, id);
      const lines = (await logRecords(s, id)).map((x) => x.line);
      const w = line(lines, "uid ").split(" ");
      assert.equal(w[1], w[5], `the workspace belongs to the job's uid: ${w.join(" ")}`);
      uids.push(Number(w[1]));
    }
    assert.notEqual(uids[0], uids[1]);
    for (const u of uids) assert.ok(u >= 1879048192, String(u));
  });

  test("a job holding every inotify instance does not starve the next", async () => {
    const hog = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "inotify", hold: 8 });
    await waitFor(s, hog.body.id, (j) => j.state === "running");
    await new Promise((res) => setTimeout(res, 3000));
    const { lines } = await attack(s, { attack: "inotify" });
    const [, n, , why] = line(lines, "inotify ").split(" ");
    assert.ok(Number(n) >= 100, `the second job got ${n} inotify instances (${why})`);
    await waitFor(s, hog.body.id);
  });

  test("a fork bomb stops at pids", async () => {
    const { lines } = await attack(s, { attack: "fork-bomb", seconds: 2 });
    const [, n] = line(lines, "forks ").split(" ");
    assert.ok(Number(n) < 256, `forked ${n}`);
  });
});

describe("docker: cpus", () => {
  test("cpus caps the CPU time a job gets (NanoCpus)", async () => {
    await backendService("docker");
    const t = await attackerStack({ cpus: "0.25" }, DOCKER);
    try {
      const { job, log } = await attack(t, { attack: "cpu-burn", procs: 2, seconds: 4 });
      assert.equal(job.state, "succeeded", JSON.stringify(job) + log.map((x) => x.line).join("\n"));
      // Sampled CPU time is a lower bound; a quarter CPU over 4 s is about 1 s, two free CPUs 8.
      assert.ok(job.usage.cpu_ms <= 0.25 * job.usage.wall_ms + 700, JSON.stringify(job.usage));
    } finally {
      await t.stop();
    }
  });
});

// Can the engine cap a container's writable layer? Asked directly: create (and remove) a
// container with StorageOpt size=.
async function engineCapsLayers(host) {
  const sock = host.replace(/^unix:\/\//, "");
  const req = (method, p, body) => new Promise((resolve, reject) => {
    const r = http.request({ socketPath: sock, method, path: p, headers: { "Content-Type": "application/json" } }, (res) => {
      let data = "";
      res.on("data", (d) => { data += d; });
      res.on("end", () => resolve({ status: res.statusCode, body: data }));
    });
    r.on("error", reject);
    r.end(body ? JSON.stringify(body) : undefined);
  });
  const c = await req("POST", "/v1.41/containers/create", {
    Image: "localhost/labbox-test:latest", Cmd: ["true"], HostConfig: { StorageOpt: { size: "64m" } },
  });
  if (c.status === 201) {
    await req("DELETE", `/v1.41/containers/${JSON.parse(c.body).Id}?force=1`);
    return true;
  }
  assert.match(c.body, /storage-opt/i, c.body);
  return false;
}

describe("docker: a /workspace the engine cannot cap", () => {
  test("is refused, and says why, unless allow_unenforced names disk", async () => {
    const svc = await backendService("docker");
    const caps = await engineCapsLayers(svc.host);
    const t = await attackerStack({ allow_unenforced: "" }, DOCKER);
    try {
      const { job } = await attack(t, { attack: "whoami" });
      if (caps) {
        assert.equal(job.state, "succeeded", JSON.stringify(job));
      } else {
        assert.equal(job.reason, "sandbox_error", JSON.stringify(job));
        assert.match(job.detail, /cannot cap \/workspace .*allow_unenforced = disk/);
      }
      assert.equal((await getJSON(t, "/api/health")).body.backend, "docker");
    } finally {
      await t.stop();
    }
  });
});
