// Conformance test: drives the OFFICIAL Modal JS SDK (npm "modal" 0.11.1) against the
// fake server (server.mjs) for the labbox job flow: app, registry image, sandbox
// create (V2 default and V1), exec with stdin/stdout/stderr and exit codes, files,
// timeouts, wait/poll, fromId reattach, list by tags, fromName, terminate, plus the
// failure-injection paths (retries, stdio resume, router JWT refresh, throttling).
// Fails (does not skip) when node_modules is missing: the imports below throw.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fs from "node:fs";
import { startFakeServer } from "./harness.mjs";

const nm = new URL("./node_modules/modal/package.json", import.meta.url);
if (!fs.existsSync(nm) || JSON.parse(fs.readFileSync(nm, "utf8")).version !== "0.11.1") {
  throw new Error("tests/fake-modal/node_modules is missing or has the wrong modal version: run `npm install --prefix tests/fake-modal`");
}

const TOKEN_ID = "ak-conformance";
const TOKEN_SECRET = "as-conformance";
const BROKEN_TAG = "fake/broken:1";

const fake = await startFakeServer({
  args: ["--token-id", TOKEN_ID, "--token-secret", TOKEN_SECRET, "--image-build-ms", "150", "--fail-image-tag", BROKEN_TAG],
});
Object.assign(process.env, {
  MODAL_SERVER_URL: fake.serverUrl,
  MODAL_TOKEN_ID: TOKEN_ID,
  MODAL_TOKEN_SECRET: TOKEN_SECRET,
  MODAL_CONFIG_PATH: "/nonexistent/modal.toml",
  MODAL_LOGLEVEL: "error",
});
const modal = await import("modal");
const { ModalClient, NotFoundError } = modal;

const clients = [];
function newClient(v2, extra = {}) {
  /* The profile (including MODAL_SANDBOX_V2) is read by the constructor. */
  process.env.MODAL_SANDBOX_V2 = v2 ? "1" : "0";
  const c = new ModalClient(extra);
  clients.push(c);
  return c;
}

after(async () => {
  for (const c of clients) c.close?.();
  await fake.stop();
});

const V1_ID = /^sb-[0-9A-Za-z]{22}$/;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stats = async () => (await fake.admin("GET", "/stats")).rpcs;
const sbState = async (id) => (await fake.admin("GET", "/state")).sandboxes.find((s) => s.id === id);

async function run(sb, argv, params) {
  const p = await sb.exec(argv, params);
  const [stdout, stderr] = await Promise.all([p.stdout.readText(), p.stderr.readText()]);
  const code = await p.wait();
  return { stdout, stderr, code };
}

for (const mode of ["v2", "v1"]) {
  describe(`sandbox flow (${mode})`, () => {
    const v2 = mode === "v2";
    let mc, app, image, sb;
    const job = `job-${mode}-${process.pid}`;

    before(async () => {
      mc = newClient(v2);
      app = await mc.apps.fromName(`labbox-conformance-${mode}`, { createIfMissing: true });
      image = mc.images.fromRegistry("python:3.12-slim");
      sb = await mc.sandboxes.create(app, image, {
        tags: { job, kind: "main" }, timeoutMs: 120000, env: { SBVAR: "from-sandbox" }, name: `named-${mode}`,
      });
    });

    test("app and sandbox ids have the right shape", async () => {
      assert.match(app.appId, /^ap-[0-9A-Za-z]{22}$/);
      if (v2) assert.doesNotMatch(sb.sandboxId, V1_ID);
      else assert.match(sb.sandboxId, V1_ID);
      const st = await sbState(sb.sandboxId);
      assert.equal(st.v2, v2);
      assert.equal(st.running, true);
      assert.deepEqual(st.tags_map, { job, kind: "main" });
    });

    test("lookup of a missing app without createIfMissing is NotFound", async () => {
      await assert.rejects(mc.apps.fromName(`no-such-app-${mode}`), NotFoundError);
    });

    test("exec: stdout, stderr and a non-zero exit code", async () => {
      const r = await run(sb, ["sh", "-c", "echo out; echo err >&2; exit 3"]);
      assert.deepEqual(r, { stdout: "out\n", stderr: "err\n", code: 3 });
    });

    test("exec: stdin is delivered and closed", async () => {
      const p = await sb.exec(["sh", "-c", "tr a-z A-Z; echo done"]);
      await p.stdin.writeText("hello ");
      await p.stdin.writeText("world\n");
      await p.stdin.close();
      assert.equal(await p.stdout.readText(), "HELLO WORLD\ndone\n");
      assert.equal(await p.wait(), 0);
    });

    test("exec: env, workdir and the sandbox env", async () => {
      const r = await run(sb, ["sh", "-c", 'echo "$FOO $SBVAR"; pwd'], { env: { FOO: "bar" }, workdir: "/workspace" });
      assert.deepEqual(r, { stdout: "bar from-sandbox\n/workspace\n", stderr: "", code: 0 });
    });

    test("exec: files persist across execs; tar round trip in binary mode", async () => {
      const w = await run(sb, ["sh", "-c", "mkdir -p /workspace/outputs && printf 'payload' > /workspace/outputs/f.txt"]);
      assert.equal(w.code, 0, w.stderr);
      const p = await sb.exec(["tar", "-cf", "-", "-C", "/workspace", "outputs"], { mode: "binary" });
      const tarBytes = await p.stdout.readBytes();
      assert.equal(await p.wait(), 0);
      assert.ok(tarBytes instanceof Uint8Array);
      assert.equal(tarBytes.length % 512, 0);
      const text = Buffer.from(tarBytes).toString("latin1");
      assert.ok(text.includes("outputs/f.txt"));
      assert.ok(text.includes("payload"));
    });

    test("exec: the sandbox has its own root (host files are not visible, /usr is read-only)", async () => {
      const r = await run(sb, ["sh", "-c", "ls /work >/dev/null 2>&1 && echo visible || echo hidden; touch /usr/x 2>/dev/null && echo rw || echo ro"]);
      assert.equal(r.stdout, "hidden\nro\n");
    });

    test("exec: 5 MB of output arrives intact", async () => {
      const p = await sb.exec(["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x"]);
      const out = await p.stdout.readText();
      assert.equal(await p.wait(), 0);
      assert.equal(out.length, 5000000);
      assert.ok(/^x+$/.test(out));
    });

    test("exec: a command killed by its timeout reports SIGKILL", async () => {
      const t0 = Date.now();
      const p = await sb.exec(["sleep", "30"], { timeoutMs: 1000 });
      let code;
      try {
        code = await p.wait();
      } catch (e) {
        /* the SDK may also give up at its own (identical) client-side deadline */
        assert.match(String(e.message), /Deadline exceeded/);
      }
      if (code !== undefined) assert.equal(code, 137);
      assert.ok(Date.now() - t0 < 10000);
      await sleep(300);
      const st = await sbState(sb.sandboxId);
      const ex = st.execs.find((e) => e.argv[0] === "sleep");
      assert.deepEqual(ex.exit, { signal: 9 });
      assert.equal(ex.timed_out, true);
    });

    test("sandbox: poll while running is null", async () => {
      assert.equal(await sb.poll(), null);
    });

    test("sandbox: reattach by id from a fresh client", async () => {
      const mc2 = newClient(v2);
      const sb2 = await mc2.sandboxes.fromId(sb.sandboxId);
      const r = await run(sb2, ["cat", "/workspace/outputs/f.txt"]);
      assert.deepEqual(r, { stdout: "payload", stderr: "", code: 0 });
    });

    test("sandbox: list by tags and fromName", async () => {
      const other = await mc.sandboxes.create(app, image, { tags: { job: `${job}-other` } });
      const listParams = v2 ? { tags: { job }, appId: app.appId } : { tags: { job } };
      const ids = [];
      for await (const s of mc.sandboxes.list(listParams)) ids.push(s.sandboxId);
      assert.deepEqual(ids, [sb.sandboxId]);
      const both = [];
      for await (const s of mc.sandboxes.list(v2 ? { appId: app.appId } : {})) both.push(s.sandboxId);
      assert.ok(both.includes(sb.sandboxId) && both.includes(other.sandboxId));
      const byName = await mc.sandboxes.fromName(app.name ?? `labbox-conformance-${mode}`, `named-${mode}`);
      assert.equal(byName.sandboxId, sb.sandboxId);
      await other.terminate();
      const after = [];
      for await (const s of mc.sandboxes.list(v2 ? { appId: app.appId } : {})) after.push(s.sandboxId);
      assert.ok(!after.includes(other.sandboxId));
    });

    test("sandbox: entrypoint exit code is the wait result", async () => {
      const s = await mc.sandboxes.create(app, image, { command: ["sh", "-c", "exit 7"] });
      assert.equal(await s.wait(), 7);
    });

    test("sandbox: lifetime timeout gives 124", async () => {
      const s = await mc.sandboxes.create(app, image, { timeoutMs: 1000 });
      assert.equal(await s.wait(), 124);
    });

    test("image: a failing build is reported", async () => {
      const bad = mc.images.fromRegistry(BROKEN_TAG);
      await assert.rejects(mc.sandboxes.create(app, bad), /fail/i);
    });

    test("terminate: wait gives 137, processes and files are gone", async () => {
      const p = await sb.exec(["sleep", "60"]);
      await sb.terminate();
      assert.equal(await sb.wait(), 137);
      /* the fake reports processes killed by terminate as SIGKILL (128 + 9) */
      assert.equal(await p.wait(), 137);
      await sleep(500);
      const st = await sbState(sb.sandboxId);
      assert.equal(st.running, false);
      assert.equal(st.result.status, 3);
      assert.ok(st.execs.every((e) => !e.running));
      assert.equal(st.root_exists, false);
    });
  });
}

describe("auth and failure injection", () => {
  test("wrong token secret is rejected", async () => {
    const bad = newClient(true, { tokenId: TOKEN_ID, tokenSecret: "as-wrong" });
    await assert.rejects(bad.apps.fromName("x", { createIfMissing: true }), (e) => /invalid|UNAUTHENTICATED/i.test(String(e.message ?? e)));
  });

  test("UNAVAILABLE on the first SandboxCreate attempt is retried with one sandbox created", async () => {
    const mc = newClient(false);
    const app = await mc.apps.fromName("labbox-inject", { createIfMissing: true });
    const image = mc.images.fromRegistry("python:3.12-slim");
    await fake.admin("POST", "/inject", { kind: "unavailable_once", rpc: "SandboxCreate", after: true });
    const before = (await stats()).SandboxCreate || 0;
    const sb = await mc.sandboxes.create(app, image, { tags: { job: "inject-create" } });
    assert.equal((await stats()).SandboxCreate - before, 2);
    const st = await fake.admin("GET", "/state");
    assert.equal(st.sandboxes.filter((s) => s.tags_map.job === "inject-create").length, 1, "idempotency key dedups the retry");
    await sb.terminate();
  });

  test("a cut stdio stream is resumed from the offset", async () => {
    const mc = newClient(true);
    const app = await mc.apps.fromName("labbox-inject", { createIfMissing: true });
    const sb = await mc.sandboxes.create(app, mc.images.fromRegistry("python:3.12-slim"));
    await fake.admin("POST", "/inject", { kind: "stdio_cut", fd: "stdout", after_bytes: 1000, count: 2 });
    const before = (await stats()).TaskExecStdioRead || 0;
    const p = await sb.exec(["sh", "-c", "seq 1 20000"]);
    const out = await p.stdout.readText();
    assert.equal(await p.wait(), 0);
    const expect = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join("");
    assert.equal(out, expect);
    assert.ok((await stats()).TaskExecStdioRead - before >= 3, "two cuts mean at least three stdout reads");
    await sb.terminate();
  });

  test("router UNAUTHENTICATED once: the SDK retries", async () => {
    const mc = newClient(true);
    const app = await mc.apps.fromName("labbox-inject", { createIfMissing: true });
    const sb = await mc.sandboxes.create(app, mc.images.fromRegistry("python:3.12-slim"));
    await fake.admin("POST", "/inject", { kind: "router_unauthenticated_once", rpc: "TaskExecStart" });
    const before = (await stats()).TaskExecStart || 0;
    const r = await run(sb, ["echo", "ok"]);
    assert.deepEqual(r, { stdout: "ok\n", stderr: "", code: 0 });
    assert.equal((await stats()).TaskExecStart - before, 2);
    await sb.terminate();
  });

  test("an expired router JWT is refreshed through the control plane", async () => {
    await fake.admin("POST", "/config", { router_jwt_ttl_secs: 1 });
    try {
      const mc = newClient(false);
      const app = await mc.apps.fromName("labbox-inject", { createIfMissing: true });
      const sb = await mc.sandboxes.create(app, mc.images.fromRegistry("python:3.12-slim"));
      assert.deepEqual(await run(sb, ["echo", "one"]), { stdout: "one\n", stderr: "", code: 0 });
      await sleep(2100);
      const before = (await stats()).TaskGetCommandRouterAccess || 0;
      assert.deepEqual(await run(sb, ["echo", "two"]), { stdout: "two\n", stderr: "", code: 0 });
      assert.ok((await stats()).TaskGetCommandRouterAccess - before >= 1, "JWT was refreshed");
      await sb.terminate();
    } finally {
      await fake.admin("POST", "/config", { router_jwt_ttl_secs: 3600 });
    }
  });

  test("server-directed retry (RPCRetryPolicy) is honoured", async () => {
    const mc = newClient(true);
    await fake.admin("POST", "/inject", { kind: "throttle_once", rpc: "AppGetOrCreate", retry_after_secs: 0.2 });
    const t0 = Date.now();
    const app = await mc.apps.fromName("labbox-throttle", { createIfMissing: true });
    assert.match(app.appId, /^ap-/);
    assert.ok(Date.now() - t0 >= 180, "client waited retry_after_secs");
  });

  test("external kill is visible to wait()", async () => {
    const mc = newClient(false);
    const app = await mc.apps.fromName("labbox-inject", { createIfMissing: true });
    const sb = await mc.sandboxes.create(app, mc.images.fromRegistry("python:3.12-slim"), { tags: { job: "kill-me" } });
    const res = await fake.admin("POST", "/kill-sandbox", { tag_job: "kill-me" });
    assert.deepEqual(res.killed, [sb.sandboxId]);
    assert.equal(await sb.wait(), 137);
  });

  test("stats count RPCs per method", async () => {
    const s = await stats();
    for (const rpc of ["AuthTokenGet", "AppGetOrCreate", "ImageGetOrCreate", "SandboxCreate", "SandboxCreateV2", "TaskExecStart", "TaskExecWait"]) {
      assert.ok(s[rpc] > 0, `${rpc} counted`);
    }
  });
});

/* Not the SDK: a raw gRPC client with labbox's own .proto files, covering what the
 * C client relies on and the SDK cannot show: reattach to an exec by id and re-read
 * from an offset with a new connection, offset-deduplicated stdin, router auth. */
describe("raw protocol (labbox C client's view)", () => {
  test("reattach an exec by id on a new connection; stdin offsets; router JWT checks", async () => {
    const grpc = (await import("@grpc/grpc-js")).default;
    const protoLoader = (await import("@grpc/proto-loader")).default;
    const { PROTO_DIR } = await import("./fake-modal.mjs");
    const def = protoLoader.loadSync(["modal_client.proto", "task_command_router.proto"], {
      includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: Number, defaults: true, oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def);
    const addr = `127.0.0.1:${fake.port}`;
    const cp = new pkg.modal.client.ModalClient(addr, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("x-modal-token-id", TOKEN_ID);
    md.set("x-modal-token-secret", TOKEN_SECRET);
    md.set("x-modal-client-version", "1.0.0");
    md.set("x-modal-host", "127.0.0.1");
    const unary = (client, m, req, meta) => new Promise((res, rej) => client[m](req, meta, (e, r) => (e ? rej(e) : res(r))));

    // x-modal-host is required, as every official client sends it (the SDK above passed with it).
    const noHost = md.clone();
    noHost.remove("x-modal-host");
    await assert.rejects(unary(cp, "AuthTokenGet", {}, noHost), (e) => e.code === grpc.status.INVALID_ARGUMENT && /x-modal-host/.test(e.details));
    const { token } = await unary(cp, "AuthTokenGet", {}, md);
    assert.equal(token.split(".").length, 3);
    const exp = JSON.parse(Buffer.from(token.split(".")[1], "base64").toString()).exp;
    assert.ok(Number.isInteger(exp) && exp > Date.now() / 1000);
    md.set("x-modal-auth-token", token);
    const { app_id } = await unary(cp, "AppGetOrCreate", { app_name: "labbox-raw", object_creation_type: 1 }, md);
    let img = await unary(cp, "ImageGetOrCreate", { app_id, image: { dockerfile_commands: ["FROM debian:12"] }, builder_version: "2025.06" }, md);
    if (!img.result) {
      img = await new Promise((res, rej) => {
        const s = cp.ImageJoinStreaming({ image_id: img.image_id, timeout: 55 }, md);
        s.on("data", (m) => { if (m.result && m.result.status) res({ ...m, image_id: img.image_id }); });
        s.on("error", rej);
      });
    }
    assert.equal(img.result.status, 1);
    const { sandbox_id } = await unary(cp, "SandboxCreate", {
      app_id, definition: { image_id: img.image_id, timeout_secs: 60, network_access: { network_access_type: 2 } },
      tags: [{ tag_name: "job", tag_value: "raw-1" }],
    }, md);
    assert.match(sandbox_id, V1_ID);
    const { task_id } = await unary(cp, "SandboxGetTaskId", { sandbox_id }, md);
    const acc = await unary(cp, "TaskGetCommandRouterAccess", { task_id }, md);
    assert.equal(acc.url, `https://127.0.0.1:${fake.port}`);

    const routerMd = (jwt) => { const m = new grpc.Metadata(); m.set("authorization", `Bearer ${jwt}`); return m; };
    const newRouter = () => new pkg.modal.task_command_router.TaskCommandRouter(addr, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    const readAll = (router, req, jwt) => new Promise((res, rej) => {
      const chunks = [];
      const s = router.TaskExecStdioRead(req, routerMd(jwt));
      s.on("data", (m) => chunks.push(m.data));
      s.on("end", () => res(Buffer.concat(chunks).toString()));
      s.on("error", rej);
    });

    let router = newRouter();
    await assert.rejects(unary(router, "TaskExecStart", { task_id, exec_id: "e0", command_args: ["true"] }, routerMd("bad.jwt.x")), (e) => e.code === grpc.status.UNAUTHENTICATED);
    const execId = "7f1d2c3a-0000-4000-8000-000000000001";
    await unary(router, "TaskExecStart", { task_id, exec_id: execId, command_args: ["sh", "-c", "cat; seq 1 3000"], stdout_config: 1, stderr_config: 1, workdir: "/workspace" }, routerMd(acc.jwt));
    await unary(router, "TaskExecStart", { task_id, exec_id: execId, command_args: ["sh", "-c", "exit 99"], stdout_config: 1, stderr_config: 1 }, routerMd(acc.jwt)); /* idempotent */
    await unary(router, "TaskExecStdinWrite", { task_id, exec_id: execId, offset: 0, data: Buffer.from("abc") }, routerMd(acc.jwt));
    await unary(router, "TaskExecStdinWrite", { task_id, exec_id: execId, offset: 0, data: Buffer.from("abcdef") }, routerMd(acc.jwt)); /* retry overlapping */
    await assert.rejects(unary(router, "TaskExecStdinWrite", { task_id, exec_id: execId, offset: 10, data: Buffer.from("x") }, routerMd(acc.jwt)), (e) => e.code === grpc.status.INVALID_ARGUMENT);
    await unary(router, "TaskExecStdinWrite", { task_id, exec_id: execId, offset: 6, eof: true }, routerMd(acc.jwt));
    const w = await unary(router, "TaskExecWait", { task_id, exec_id: execId }, routerMd(acc.jwt));
    assert.equal(w.exit_status, "code");
    assert.equal(w.code, 0);
    router.close();

    /* "controller restart": new connection, new JWT, same ids, read from an offset */
    const acc2 = await unary(cp, "TaskGetCommandRouterAccess", { task_id }, md);
    router = newRouter();
    const expected = "abcdef" + Array.from({ length: 3000 }, (_, i) => `${i + 1}\n`).join("");
    assert.equal(await readAll(router, { task_id, exec_id: execId, offset: 0, file_descriptor: 0 }, acc2.jwt), expected);
    assert.equal(await readAll(router, { task_id, exec_id: execId, offset: 1234, file_descriptor: 0 }, acc2.jwt), expected.slice(1234));
    assert.equal(await readAll(router, { task_id, exec_id: execId, offset: 0, file_descriptor: 1 }, acc2.jwt), "");
    const poll = await unary(router, "TaskExecPoll", { task_id, exec_id: execId }, routerMd(acc2.jwt));
    assert.deepEqual([poll.exit_status, poll.code], ["code", 0]);
    const running = "7f1d2c3a-0000-4000-8000-000000000002";
    await unary(router, "TaskExecStart", { task_id, exec_id: running, command_args: ["sleep", "30"] }, routerMd(acc2.jwt));
    const poll2 = await unary(router, "TaskExecPoll", { task_id, exec_id: running }, routerMd(acc2.jwt));
    assert.equal(poll2.exit_status, undefined);
    await assert.rejects(unary(router, "TaskExecPoll", { task_id, exec_id: "nope" }, routerMd(acc2.jwt)), (e) => e.code === grpc.status.NOT_FOUND);

    /* network blocked: no interfaces but lo */
    const netId = "7f1d2c3a-0000-4000-8000-000000000003";
    await unary(router, "TaskExecStart", { task_id, exec_id: netId, command_args: ["sh", "-c", "ls /sys/class/net 2>/dev/null || cat /proc/net/dev"], stdout_config: 1 }, routerMd(acc2.jwt));
    await unary(router, "TaskExecWait", { task_id, exec_id: netId }, routerMd(acc2.jwt));
    const net = await readAll(router, { task_id, exec_id: netId, offset: 0, file_descriptor: 0 }, acc2.jwt);
    assert.doesNotMatch(net, /eth|ens|enp|veth/);

    const list = await unary(cp, "SandboxList", { app_id, tags: [{ tag_name: "job", tag_value: "raw-1" }] }, md);
    assert.deepEqual(list.sandboxes.map((s) => s.id), [sandbox_id]);
    const waitRunning = await unary(cp, "SandboxWait", { sandbox_id, timeout: 0 }, md);
    assert.equal(waitRunning.result, null);
    await unary(cp, "SandboxTerminate", { sandbox_id }, md);
    const w2 = await unary(router, "TaskExecWait", { task_id, exec_id: running }, routerMd(acc2.jwt));
    assert.deepEqual([w2.exit_status, w2.signal], ["signal", 9]);
    const fin = await unary(cp, "SandboxWait", { sandbox_id, timeout: 0 }, md);
    assert.equal(fin.result.status, 3);
    const again = await unary(cp, "SandboxTerminate", { sandbox_id }, md);
    assert.equal(again.existing_result.status, 3);
    await assert.rejects(unary(cp, "TaskGetCommandRouterAccess", { task_id }, md), (e) => e.code === grpc.status.NOT_FOUND);
    router.close();
    cp.close();
  });
});
