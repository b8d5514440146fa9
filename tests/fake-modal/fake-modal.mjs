// Fake Modal backend for offline tests: serves modal.client.ModalClient and
// modal.task_command_router.TaskCommandRouter over plaintext HTTP/2 (h2c) on one
// 127.0.0.1 port, runs sandbox processes for real under bubblewrap, and exposes an
// HTTP/1.1 admin API for state inspection, statistics and failure injection.
// Protocol reference: docs/modal.md (the RPCs of a job, field numbers, presence rules).
// Entry point for scripts: server.mjs. Programmatic use: startFakeModal(options).
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PROTO_DIR = path.resolve(HERE, "../../fcgi/rpc/proto");

const S = grpc.status;
const GS = {
  UNSPECIFIED: 0, SUCCESS: 1, FAILURE: 2, TERMINATED: 3, TIMEOUT: 4,
  INIT_FAILURE: 5, INTERNAL_FAILURE: 6, IDLE_TIMEOUT: 7, MEMORY_MANAGER_EVICTION: 8,
};
const OCT = { UNSPECIFIED: 0, CREATE_IF_MISSING: 1, CREATE_FAIL_IF_EXISTS: 2, CREATE_OVERWRITE_IF_EXISTS: 3, ANONYMOUS_OWNED_BY_APP: 4, EPHEMERAL: 5 };
const NET_BLOCKED = 2;
const STDOUT_PIPE = 1;
const STDERR_PIPE = 1;
const STDERR_TO_STDOUT = 2;
const CHUNK = 1 << 20; /* max bytes per TaskExecStdioRead message */
const MAX_HOLD_SECS = 55; /* longest a long-poll is held */
const LIST_PAGE = 50;
const CALL_LOG = 2000; /* calls kept for GET /calls */
/* The x-modal-* request headers GET /calls shows (never the token secret or the JWTs). */
const SHOWN_HEADERS = ["x-modal-host", "x-modal-client-type", "x-modal-client-version",
  "x-modal-libmodal-version", "x-modal-token-id", "x-idempotency-key", "x-retry-attempt",
  "x-retry-delay", "x-throttle-retry-attempt", "x-throttle-retry-delay"];
const SANDBOX_BASE_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
};

export class RpcError extends Error {
  constructor(code, message, metadata) {
    super(message);
    this.code = code;
    this.metadata = metadata;
  }
}

/* ------------------------------------------------------------------ ids, jwt */

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
function randChars(n, alphabet) {
  const bytes = crypto.randomBytes(n);
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[bytes[i] % alphabet.length];
  return s;
}
function newId(prefix) {
  return `${prefix}-${randChars(22, B62)}`;
}
function newTaskId() {
  /* Python treats task ids ending in "V" as V2: avoid that for all of ours. */
  for (;;) {
    const id = newId("ta");
    if (!id.endsWith("V")) return id;
  }
}
function newV2SandboxId() {
  /* ULID shape: 10 chars of time + 16 random, Crockford base32. */
  let t = Date.now();
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return `sb-${time}${randChars(16, CROCKFORD)}`;
}
export function isV1SandboxId(id) {
  return /^sb-[0-9A-Za-z]{22}$/.test(id);
}

/* A three-part JWT whose payload base64 uses only [A-Za-z0-9] so that both the
 * standard (JS atob) and URL-safe (Go) decoders accept it, without padding. */
const JWT_HEADER = Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url");
function makeJwt(claims) {
  for (let n = 0; ; n++) {
    const payload = Buffer.from(JSON.stringify({ ...claims, jti: crypto.randomBytes(6).toString("hex"), n })).toString("base64");
    if (/^[A-Za-z0-9]+$/.test(payload)) return `${JWT_HEADER}.${payload}.ZmFrZQ`;
  }
}

/* ------------------------------------------------------------------ byte log */

class ByteLog {
  constructor() {
    this.buf = Buffer.alloc(0);
    this.len = 0;
  }
  append(b) {
    if (this.len + b.length > this.buf.length) {
      const nb = Buffer.alloc(Math.max(this.len + b.length, this.buf.length * 2, 65536));
      this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  slice(from, to) {
    return this.buf.subarray(from, Math.min(to, this.len));
  }
}

/* ------------------------------------------------------------------ processes */

/* Host top-level entries mapped into every sandbox root: directories are bound
 * read-only, symlinks (Debian's merged /usr: /bin -> usr/bin) are recreated in the
 * per-sandbox root once, at creation, so that every bwrap run finds them. */
const HOST_TOP = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"].flatMap((d) => {
  try {
    const st = fs.lstatSync(`/${d}`);
    if (st.isSymbolicLink()) return [{ name: d, link: fs.readlinkSync(`/${d}`) }];
    if (st.isDirectory()) return [{ name: d }];
  } catch {}
  return [];
});
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p));
const ROOT_BINDS = HOST_TOP.filter((e) => !e.link).flatMap((e) => ["--ro-bind", `/${e.name}`, `/${e.name}`]);
function prepareRoot(rootDir) {
  for (const d of ["workspace", "tmp", "root", "proc", "dev"]) fs.mkdirSync(path.join(rootDir, d), { recursive: true });
  fs.chmodSync(path.join(rootDir, "tmp"), 0o1777);
  for (const e of HOST_TOP) {
    if (e.link) fs.symlinkSync(e.link, path.join(rootDir, e.name));
    else fs.mkdirSync(path.join(rootDir, e.name), { recursive: true });
  }
}

const NSENTER = ["/usr/bin/nsenter", "/bin/nsenter"].find((p) => fs.existsSync(p));

/* Host pids of pid and all its descendants (host /proc), for killing an exec's whole tree
 * even where a process left the exec's process group (setsid). */
function processTree(pid) {
  const children = new Map();
  let entries = [];
  try {
    entries = fs.readdirSync("/proc");
  } catch {}
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e)) continue;
    let st;
    try {
      st = fs.readFileSync(`/proc/${e}/stat`, "latin1");
    } catch {
      continue;
    }
    const ppid = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(e));
  }
  const out = [];
  const todo = [pid];
  while (todo.length > 0) {
    const q = todo.pop();
    out.push(q);
    for (const c of children.get(q) || []) todo.push(c);
  }
  return out;
}

/* The namespaces of one sandbox, like one Modal container: a bwrap (pid 1 of its own pid
 * namespace, with mount, network, ipc and uts namespaces) running `sleep infinity`, started
 * at creation. Every process of the sandbox enters these namespaces with nsenter, so all
 * execs share one pid namespace (and /proc) and can see and signal each other, as on Modal.
 * `ready` resolves to the host pid of the namespace's pid 1; killing the holder ends every
 * process of the sandbox (the kernel kills a pid namespace with its pid 1). */
class Holder extends EventEmitter {
  constructor(sb, log) {
    super();
    this.exited = false;
    const bw = ["--die-with-parent", "--unshare-all"];
    if (sb.network) bw.push("--share-net");
    bw.push("--bind", sb.rootDir, "/", ...ROOT_BINDS, "--proc", "/proc", "--dev", "/dev");
    bw.push("--chdir", "/", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--info-fd", "3");
    /* bwrap reports the pid before the namespace is set up (root, /proc): the command's first
     * line says it is. */
    bw.push("--", "sh", "-c", "echo ready && exec sleep infinity");
    const [cmd, args] = SETPRIV ? [SETPRIV, ["--pdeathsig", "KILL", "--", "bwrap", ...bw]] : ["bwrap", bw];
    let info = "";
    let err = "";
    let out = "";
    let nsPid = 0;
    this.ready = new Promise((resolve, reject) => {
      if (!NSENTER) {
        reject(new Error("nsenter (util-linux) is not installed"));
        return;
      }
      this.child = spawn(cmd, args, { detached: true, stdio: ["ignore", "pipe", "pipe", "pipe"] });
      this.pid = this.child.pid;
      const check = () => {
        if (nsPid > 0 && out.startsWith("ready\n")) resolve(nsPid);
      };
      this.child.stderr.on("data", (b) => (err += b.toString()));
      this.child.stdout.on("data", (b) => {
        out += b.toString();
        check();
      });
      this.child.stdio[3].on("data", (b) => {
        info += b.toString();
        const m = /"child-pid"\s*:\s*([0-9]+)/.exec(info);
        if (m) nsPid = Number(m[1]);
        check();
      });
      this.child.on("error", (e) => reject(new Error(`cannot start bwrap: ${e.message}`)));
      this.child.on("exit", () => {
        this.exited = true;
        log(`sandbox ${sb.id}: namespace holder exited`);
        reject(new Error(`bwrap: ${err.trim() || "exited"}`));
        this.emit("exit");
      });
    });
    this.ready.catch(() => {});
  }
  kill() {
    if (this.exited || !this.pid) return;
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {}
  }
  gone() {
    return this.exited || !this.child ? Promise.resolve() : new Promise((r) => this.once("exit", r));
  }
}

/* One process inside a sandbox (an exec or the entrypoint): stdout/stderr are
 * drained continuously into ByteLogs, stdin is written by offset, exit status is
 * recorded. Emits "update" on any new output or state change. */
class Proc extends EventEmitter {
  constructor(sb, { id, argv, env, cwd, stdoutMode, stderrMode, timeoutSecs, log }) {
    super();
    this.setMaxListeners(0);
    this.sb = sb;
    this.id = id;
    this.argv = argv;
    this.out = new ByteLog();
    this.err = new ByteLog();
    this.outDevnull = stdoutMode !== STDOUT_PIPE;
    this.errDevnull = stderrMode !== STDERR_PIPE && stderrMode !== STDERR_TO_STDOUT;
    this.errToOut = stderrMode === STDERR_TO_STDOUT;
    this.exit = null; /* {code} | {signal} once finished */
    this.killedSignal = 0;
    this.stdinWritten = 0;
    this.stdinClosed = false;
    this.stdinChain = Promise.resolve();
    this.startedAt = Date.now() / 1000;
    this.finishedAt = 0;
    this.timedOut = false;
    this.log = log;
    this.child = null;
    this.pid = 0;
    /* The process starts once the sandbox's namespaces exist (a few ms after creation). */
    this.started = sb.holder.ready.then(
      (nsPid) => this.spawn(nsPid, argv, env, cwd),
      (e) => {
        this.err.append(Buffer.from(`fake-modal: cannot start the process: ${e.message}\n`));
        this.finish({ code: 127 });
      });
    if (timeoutSecs > 0) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.kill();
      }, timeoutSecs * 1000);
    }
  }
  /* Enter the sandbox's namespaces (nsenter --all, root and cwd inside them) in its own
   * process group (detached) so kill() can signal the whole group, under
   * setpriv --pdeathsig so nothing outlives a crashed fake server (and the holder's pid 1
   * takes every sandbox process with it). */
  spawn(nsPid, argv, env, cwd) {
    if (this.exit) return; /* killed before it started */
    /* exec_pid_namespace "private": every exec gets a pid namespace (and /proc) of its own
     * inside the sandbox, sharing only the files: what a client may not assume away. */
    const priv = this.sb.execPidNs === "private" && this.id.split("/").pop() !== "entrypoint";
    const ns = priv
      ? ["--target", String(nsPid), "--mount", "--uts", "--ipc", "--net", "--root", `--wd=${path.join(this.sb.rootDir, cwd)}`,
        "--", "unshare", "--pid", "--fork", "--mount-proc", "--", ...argv]
      : ["--target", String(nsPid), "--all", "--root", `--wd=${path.join(this.sb.rootDir, cwd)}`, "--", ...argv];
    const wantErr = !this.errDevnull;
    const [cmd, args] = SETPRIV ? [SETPRIV, ["--pdeathsig", "KILL", "--", NSENTER, ...ns]] : [NSENTER, ns];
    this.child = spawn(cmd, args, {
      detached: true,
      env,
      stdio: ["pipe", this.outDevnull && !this.errToOut ? "ignore" : "pipe", wantErr ? "pipe" : "ignore"],
    });
    this.pid = this.child.pid;
    this.child.stdin.on("error", () => {}); /* EPIPE when the process exits early */
    const onOut = (b) => { this.out.append(b); this.emit("update"); };
    if (this.child.stdout) this.child.stdout.on("data", this.outDevnull ? () => {} : onOut);
    if (this.child.stderr) this.child.stderr.on("data", this.errToOut ? onOut : (b) => { this.err.append(b); this.emit("update"); });
    this.child.on("error", (e) => {
      this.err.append(Buffer.from(`fake-modal: cannot start nsenter: ${e.message}\n`));
      this.finish({ code: 127 });
    });
    const status = (code, signal) => {
      if (this.killedSignal) return { signal: this.killedSignal };
      if (signal) return { signal: os.constants.signals[signal] || 9 };
      return { code: code ?? 0 };
    };
    this.child.on("exit", (code, signal) => {
      if (this.killedSignal) {
        /* killed by us: output after the kill does not matter */
        this.child.stdout?.destroy();
        this.child.stderr?.destroy();
        this.finish(status(code, signal));
        return;
      }
      /* normal exit: wait for the pipes to drain ("close"), but not forever */
      this.closeGuard = setTimeout(() => {
        this.killGroup();
        this.child.stdout?.destroy();
        this.child.stderr?.destroy();
        this.finish(status(code, signal));
      }, 2000);
    });
    this.child.on("close", (code, signal) => this.finish(status(code, signal)));
  }
  get running() {
    return this.exit === null;
  }
  finish(exit) {
    if (this.exit) return;
    this.exit = exit;
    this.finishedAt = Date.now() / 1000;
    clearTimeout(this.timer);
    clearTimeout(this.closeGuard);
    this.log(`proc ${this.id} exited ${JSON.stringify(exit)}${this.timedOut ? " (timeout)" : ""}`);
    this.emit("update");
    this.emit("exit", exit);
  }
  killGroup() {
    if (!this.pid) return;
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {}
  }
  /* SIGKILL the process, everything it started (also what left its process group) and
   * its group: what a Modal exec timeout or terminate does to an exec. */
  kill() {
    if (!this.running) return;
    this.killedSignal = 9;
    if (!this.child) {
      this.finish({ signal: 9 });
      return;
    }
    for (const q of processTree(this.pid)) {
      try {
        process.kill(q, "SIGKILL");
      } catch {}
    }
    this.killGroup();
    try {
      this.child.kill("SIGKILL");
    } catch {}
  }
  exited() {
    return this.running ? new Promise((r) => this.once("exit", r)) : Promise.resolve(this.exit);
  }
  /* Write data that starts at stream offset `offset`; already-written prefixes
   * are skipped (retries), gaps are refused. Serialized per process. */
  writeStdin(offset, data, eof) {
    const run = async () => {
      await this.started;
      if (offset > this.stdinWritten) {
        throw new RpcError(S.INVALID_ARGUMENT, `stdin offset ${offset} is beyond the ${this.stdinWritten} bytes written`);
      }
      const skip = this.stdinWritten - offset;
      const fresh = skip < data.length ? data.subarray(skip) : Buffer.alloc(0);
      if (fresh.length > 0) {
        if (this.stdinClosed) throw new RpcError(S.FAILED_PRECONDITION, "stdin already closed");
        if (!this.running || !this.child) throw new RpcError(S.FAILED_PRECONDITION, "process has exited");
        await new Promise((resolve, reject) => {
          this.child.stdin.write(fresh, (e) => (e ? reject(new RpcError(S.FAILED_PRECONDITION, `process stopped reading stdin: ${e.code || e.message}`)) : resolve()));
        });
        this.stdinWritten += fresh.length;
      }
      if (eof && !this.stdinClosed) {
        this.stdinClosed = true;
        this.child?.stdin.end();
      }
    };
    const p = this.stdinChain.then(run);
    this.stdinChain = p.catch(() => {});
    return p;
  }
  releaseOutput() {
    this.released = true;
    this.out = new ByteLog();
    this.err = new ByteLog();
  }
  summary() {
    return {
      released: !!this.released,
      id: this.id, exec_id: this.id.split("/").pop(), argv: this.argv, pid: this.pid, running: this.running, exit: this.exit,
      timed_out: this.timedOut, stdout_bytes: this.out.len, stderr_bytes: this.err.len,
      stdin_bytes: this.stdinWritten, stdin_closed: this.stdinClosed,
      started_at: this.startedAt, finished_at: this.finishedAt,
    };
  }
}

/* ------------------------------------------------------------------ the server */

/**
 * Start the fake. Options (all optional):
 *   host ("127.0.0.1"), port (0 = any), adminPort (0 = any),
 *   tokenId ("ak-test"), tokenSecret ("as-test"), stateDir (temp dir),
 *   imageBuildMs (300), scheduleDelayMs (0), authTokenTtlSecs (3600),
 *   routerJwtTtlSecs (3600), failImageTags ([]), verbose (false), createDelayMs (0),
 *   tlsCert / tlsKey (PEM files: serve TLS instead of h2c), proxy (false: an idle-cutting
 *   proxy in front, see startProxy), proxyIdleCutMs (0 = never cut).
 * Resolves to the FakeModal: { port, clientPort (what clients dial), adminPort, routerUrl,
 *   close() }.
 */
export async function startFakeModal(options = {}) {
  const fake = new FakeModal(options);
  await fake.listen();
  return fake;
}

export class FakeModal {
  constructor(o) {
    this.host = o.host || "127.0.0.1";
    this.wantPort = o.port ?? 0;
    this.wantAdminPort = o.adminPort ?? 0;
    this.tokenId = o.tokenId ?? "ak-test";
    this.tokenSecret = o.tokenSecret ?? "as-test";
    this.ownStateDir = !o.stateDir;
    this.stateDir = o.stateDir || fs.mkdtempSync(path.join(os.tmpdir(), "fake-modal-"));
    fs.mkdirSync(path.join(this.stateDir, "sandboxes"), { recursive: true });
    this.config = {
      image_build_ms: o.imageBuildMs ?? 300,
      schedule_delay_ms: o.scheduleDelayMs ?? 0,
      auth_token_ttl_secs: o.authTokenTtlSecs ?? 3600,
      router_jwt_ttl_secs: o.routerJwtTtlSecs ?? 3600,
      /* exec output of a finished sandbox is dropped this long after it ended */
      release_output_after_secs: o.releaseOutputAfterSecs ?? 30,
      image_builder_version: "2025.06",
      /* SandboxCreate[V2] answers only after this long (a wait for capacity) */
      create_delay_ms: o.createDelayMs ?? 0,
      /* the idle-cutting proxy (--proxy): connections quiet this long are cut; 0 = never */
      proxy_idle_cut_ms: o.proxyIdleCutMs ?? 0,
      /* "shared" (one pid namespace per sandbox, as Modal's containers) or "private" (one per
       * exec) for sandboxes created from now on */
      exec_pid_namespace: "shared",
    };
    this.tls = o.tlsCert && o.tlsKey ? { cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) } : null;
    this.wantProxy = !!o.proxy;
    this.calls = []; /* the last CALL_LOG calls: { t, rpc, service, peer, host, headers } */
    this.proxyStats = { connections: 0, cuts: 0, pings: 0 };
    this.verbose = !!o.verbose;
    this.failImageTags = new Set(o.failImageTags || []);
    this.apps = new Map(); /* `${env}\0${name}` -> app */
    this.appsById = new Map();
    this.envs = new Map();
    this.secrets = new Map();
    this.images = new Map(); /* id -> image */
    this.imagesByKey = new Map();
    this.sandboxes = new Map(); /* id -> sandbox */
    this.tasks = new Map(); /* task id -> sandbox */
    this.authTokens = new Map(); /* jwt -> exp */
    this.routerJwts = new Map(); /* jwt -> { taskId, exp } */
    this.idempotent = new Map(); /* `${rpc}\0${key}` -> Promise<response> */
    this.injections = [];
    this.nextInjection = 1;
    this.stats = {};
    this.lastCreatedAt = 0;
    this.events = new EventEmitter();
    this.events.setMaxListeners(0);
    const root = new protobuf.Root();
    root.resolvePath = (_o, t) => path.join(PROTO_DIR, path.basename(t));
    root.loadSync("modal_client.proto", { keepCase: true });
    this.RPCStatus = root.lookupType("modal.client.RPCStatus");
    this.RPCRetryPolicy = root.lookupType("modal.client.RPCRetryPolicy");
  }

  log(msg) {
    if (this.verbose) process.stderr.write(`[fake-modal ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  }

  /* -------------------------------------------------------------- plumbing */

  async listen() {
    const pkgDef = protoLoader.loadSync(["modal_client.proto", "task_command_router.proto"], {
      includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: Number, defaults: true, oneofs: true,
    });
    const proto = grpc.loadPackageDefinition(pkgDef);
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": 128 * 1024 * 1024,
      "grpc.max_send_message_length": 128 * 1024 * 1024,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 1000,
    });
    this.server.addService(proto.modal.client.ModalClient.service, this.controlHandlers(proto.modal.client.ModalClient.service));
    this.server.addService(proto.modal.task_command_router.TaskCommandRouter.service, this.routerHandlers(proto.modal.task_command_router.TaskCommandRouter.service));
    const creds = this.tls
      ? grpc.ServerCredentials.createSsl(null, [{ private_key: this.tls.key, cert_chain: this.tls.cert }], false)
      : grpc.ServerCredentials.createInsecure();
    this.port = await new Promise((resolve, reject) => {
      this.server.bindAsync(`${this.host}:${this.wantPort}`, creds, (e, p) => (e ? reject(e) : resolve(p)));
    });
    this.clientPort = this.wantProxy ? await this.startProxy() : this.port;
    this.routerUrl = `https://${this.host}:${this.clientPort}`;
    this.admin = http.createServer((req, res) => this.handleAdmin(req, res));
    await new Promise((resolve, reject) => {
      this.admin.once("error", reject);
      this.admin.listen(this.wantAdminPort, this.host, resolve);
    });
    this.adminPort = this.admin.address().port;
    return this;
  }

  /* The idle-cutting proxy: a TCP relay to the gRPC port, as a load balancer in front of
   * Modal, that cuts a connection quiet in both directions for proxy_idle_cut_ms (checked every
   * 100 ms) and counts the HTTP/2 PING frames clients send (plaintext h2c only: it reads the
   * frame headers after the connection preface). */
  async startProxy() {
    this.proxySockets = new Set();
    this.proxy = net.createServer((c) => {
      const up = net.connect(this.port, this.host);
      const conn = { c, up, last: Date.now(), buf: Buffer.alloc(0), skip: 24 };
      this.proxyStats.connections++;
      this.proxySockets.add(conn);
      const end = () => { c.destroy(); up.destroy(); this.proxySockets.delete(conn); };
      c.on("data", (b) => { conn.last = Date.now(); this.countPings(conn, b); up.write(b); });
      up.on("data", (b) => { conn.last = Date.now(); c.write(b); });
      for (const s of [c, up]) { s.on("error", end); s.on("close", end); }
    });
    this.proxyTimer = setInterval(() => {
      const cut = this.config.proxy_idle_cut_ms;
      if (!cut) return;
      for (const conn of this.proxySockets) {
        if (Date.now() - conn.last < cut) continue;
        this.proxyStats.cuts++;
        this.log("proxy: cutting a quiet connection");
        conn.c.destroy();
        conn.up.destroy();
        this.proxySockets.delete(conn);
      }
    }, 100);
    this.proxyTimer.unref();
    await new Promise((resolve, reject) => {
      this.proxy.once("error", reject);
      this.proxy.listen(0, this.host, resolve);
    });
    return this.proxy.address().port;
  }

  countPings(conn, b) {
    conn.buf = Buffer.concat([conn.buf, b]);
    for (;;) {
      if (conn.skip > 0) {
        const n = Math.min(conn.skip, conn.buf.length);
        conn.skip -= n;
        conn.buf = conn.buf.subarray(n);
        if (conn.skip > 0) return;
        continue;
      }
      if (conn.buf.length < 9) return;
      const len = conn.buf.readUIntBE(0, 3), type = conn.buf[3], flags = conn.buf[4];
      if (type === 6 && !(flags & 1)) this.proxyStats.pings++;
      conn.skip = 9 + len;
    }
  }

  async close() {
    clearInterval(this.proxyTimer);
    if (this.proxy) {
      for (const conn of this.proxySockets) { conn.c.destroy(); conn.up.destroy(); }
      this.proxy.close();
    }
    for (const sb of this.sandboxes.values()) this.finishSandbox(sb, GS.TERMINATED, { exception: "fake server shutting down" });
    await Promise.all([...this.sandboxes.values()].map((sb) => sb.cleaned));
    await new Promise((r) => this.admin.close(() => r()));
    this.admin.closeAllConnections?.();
    this.server.forceShutdown();
    if (this.ownStateDir) fs.rmSync(this.stateDir, { recursive: true, force: true });
  }

  count(rpc) {
    this.stats[rpc] = (this.stats[rpc] || 0) + 1;
  }

  /* One call for GET /calls: when, what, from which connection (the client's address and
   * port), to which authority, with which x-modal-* headers. */
  record(service, rpc, call) {
    const headers = {};
    for (const h of SHOWN_HEADERS) {
      const v = call.metadata.get(h)[0];
      if (v !== undefined) headers[h] = String(v);
    }
    this.calls.push({ t: Date.now(), rpc, service, peer: call.getPeer?.() || "", host: call.getHost?.() || "", headers });
    if (this.calls.length > CALL_LOG) this.calls.splice(0, this.calls.length - CALL_LOG);
  }

  /* Find and consume a matching injection of one of `kinds`. */
  takeInjection(kinds, service, rpc, pred = () => true) {
    for (const inj of this.injections) {
      if (!kinds.includes(inj.kind)) continue;
      if (inj.rpc && inj.rpc !== "*" && inj.rpc !== rpc) continue;
      if (inj.service && inj.service !== service) continue;
      if (!pred(inj)) continue;
      inj.remaining -= 1;
      inj.fired = (inj.fired || 0) + 1;
      if (inj.remaining <= 0) this.injections = this.injections.filter((x) => x !== inj);
      this.log(`injection ${inj.id} (${inj.kind}) fired on ${rpc}`);
      return inj;
    }
    return null;
  }

  injectedError(inj) {
    if (inj.kind === "throttle") {
      const detail = {
        type_url: "type.modal.com/modal.client.RPCRetryPolicy",
        value: this.RPCRetryPolicy.encode(this.RPCRetryPolicy.create({ retry_after_secs: inj.retry_after_secs ?? 0.2 })).finish(),
      };
      const msg = "fake-modal: injected throttle";
      const st = this.RPCStatus.encode(this.RPCStatus.create({ code: S.RESOURCE_EXHAUSTED, message: msg, details: [detail] })).finish();
      const md = new grpc.Metadata();
      md.set("grpc-status-details-bin", Buffer.from(st));
      return new RpcError(S.RESOURCE_EXHAUSTED, msg, md);
    }
    return new RpcError(inj.codeNum, inj.message || `fake-modal: injected ${inj.code}`);
  }

  toGrpcError(e, rpc) {
    if (e instanceof RpcError) {
      this.log(`${rpc} -> ${Object.keys(S).find((k) => S[k] === e.code)}: ${e.message}`);
      return { code: e.code, details: e.message, metadata: e.metadata };
    }
    process.stderr.write(`[fake-modal] internal error in ${rpc}: ${e && e.stack}\n`);
    return { code: S.INTERNAL, details: `fake-modal internal error: ${e && e.message}` };
  }

  checkControlAuth(call, rpc) {
    const md = call.metadata;
    /* As the official clients send it: the host of the server URL (the authority without its
     * port), which Modal's front end routes by. */
    const want = String(call.getHost?.() || "").replace(/:\d+$/, "");
    const got = md.get("x-modal-host")[0];
    if (got === undefined) throw new RpcError(S.INVALID_ARGUMENT, "missing x-modal-host header");
    if (want && String(got) !== want) throw new RpcError(S.INVALID_ARGUMENT, `x-modal-host ${got} is not ${want}`);
    const id = md.get("x-modal-token-id")[0];
    const secret = md.get("x-modal-token-secret")[0];
    if (id !== this.tokenId || secret !== this.tokenSecret) {
      throw new RpcError(S.UNAUTHENTICATED, "Token ID or secret is invalid");
    }
    if (!md.get("x-modal-client-version")[0]) {
      throw new RpcError(S.INVALID_ARGUMENT, "missing x-modal-client-version header");
    }
    if (rpc !== "AuthTokenGet") {
      const tok = md.get("x-modal-auth-token")[0];
      if (tok !== undefined) {
        const exp = this.authTokens.get(String(tok));
        if (exp === undefined) throw new RpcError(S.UNAUTHENTICATED, "unknown x-modal-auth-token");
        if (exp * 1000 < Date.now()) throw new RpcError(S.UNAUTHENTICATED, "x-modal-auth-token expired");
      }
    }
  }

  /* Router JWT: issued by *CommandRouterAccess for one task. Returns the task id. */
  checkRouterAuth(call) {
    const h = String(call.metadata.get("authorization")[0] || "");
    const m = /^Bearer (\S+)$/.exec(h);
    if (!m) throw new RpcError(S.UNAUTHENTICATED, "missing authorization: Bearer <jwt>");
    const info = this.routerJwts.get(m[1]);
    if (!info) throw new RpcError(S.UNAUTHENTICATED, "unknown router JWT");
    if (info.exp * 1000 < Date.now()) throw new RpcError(S.UNAUTHENTICATED, "router JWT expired");
    return info.taskId;
  }

  /* Wrap every handler: stats, auth, before/after injections, error mapping. */
  wrap(service, rpc, kind, fn) {
    const pre = (call) => {
      this.count(rpc);
      this.record(service, rpc, call);
      this.log(`${service} ${rpc}`);
      let routerTask = null;
      if (service === "client") this.checkControlAuth(call, rpc);
      else routerTask = this.checkRouterAuth(call);
      const inj = this.takeInjection(["error", "throttle"], service, rpc, (i) => !i.after);
      if (inj) throw this.injectedError(inj);
      return routerTask;
    };
    const post = () => {
      const inj = this.takeInjection(["error", "throttle"], service, rpc, (i) => i.after);
      if (inj) throw this.injectedError(inj);
    };
    if (kind === "unary" || kind === "clientStream") {
      return async (call, callback) => {
        try {
          const ctx = { routerTask: pre(call), call };
          const res = await fn(kind === "unary" ? call.request : call, ctx);
          post();
          callback(null, res);
        } catch (e) {
          callback(this.toGrpcError(e, rpc));
        }
      };
    }
    return async (call) => {
      try {
        const ctx = { routerTask: pre(call), call };
        /* Response headers at once, before the first message, as a tonic or Go server sends
         * them: a client can tell a stream the server accepted from one it never reached. */
        call.sendMetadata(new grpc.Metadata());
        await fn(call.request, ctx);
        if (!call.cancelled) call.end();
      } catch (e) {
        if (!call.cancelled) call.emit("error", this.toGrpcError(e, rpc));
      }
    };
  }

  bindAll(svc, service, impl) {
    const handlers = {};
    for (const [name, def] of Object.entries(svc)) {
      const rpc = def.path.split("/").pop();
      const kind = def.requestStream ? "clientStream" : def.responseStream ? "serverStream" : "unary";
      const f = impl[rpc];
      if (!f) continue; /* grpc-js answers UNIMPLEMENTED */
      handlers[name] = this.wrap(service, rpc, kind, f.bind(this));
    }
    return handlers;
  }

  /* Holds until `emitter` emits "update" and pred() is true, the timeout passes or
   * the call is cancelled. Resolves true when pred() became true. */
  waitFor(emitter, pred, timeoutMs, call) {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer = null;
      const done = (v) => {
        clearTimeout(timer);
        emitter.off("update", check);
        call?.off?.("cancelled", cancel);
        resolve(v);
      };
      const check = () => { if (pred()) done(true); };
      const cancel = () => done(false);
      emitter.on("update", check);
      call?.on?.("cancelled", cancel);
      if (timeoutMs !== null && timeoutMs !== undefined) timer = setTimeout(() => done(pred()), Math.max(0, timeoutMs));
    });
  }

  /* Writes one streaming message, honouring backpressure. */
  async send(call, msg) {
    if (call.cancelled) return false;
    if (!call.write(msg)) {
      await new Promise((r) => {
        const done = () => { call.off("drain", done); call.off("cancelled", done); r(); };
        call.on("drain", done);
        call.on("cancelled", done);
      });
    }
    return !call.cancelled;
  }

  /* -------------------------------------------------------------- model helpers */

  appMustExist(appId) {
    const app = this.appsById.get(appId);
    if (!app) throw new RpcError(S.NOT_FOUND, `App ${appId} not found`);
    return app;
  }

  sandboxFor(id, rpc, family) {
    const sb = this.sandboxes.get(id);
    if (!sb) throw new RpcError(S.NOT_FOUND, `Sandbox ${id} not found`);
    if (family === "v1" && sb.v2) throw new RpcError(S.NOT_FOUND, `${rpc}: ${id} is a V2 sandbox, use the V2 RPC`);
    if (family === "v2" && !sb.v2) throw new RpcError(S.NOT_FOUND, `${rpc}: ${id} is a V1 sandbox, use the V1 RPC`);
    return sb;
  }

  taskFor(taskId, routerTask) {
    const sb = this.tasks.get(taskId);
    if (!sb) throw new RpcError(S.NOT_FOUND, `task ${taskId} not found`);
    if (routerTask !== undefined && routerTask !== null && routerTask !== taskId) {
      throw new RpcError(S.PERMISSION_DENIED, `router JWT is for task ${routerTask}, not ${taskId}`);
    }
    return sb;
  }

  execFor(req, routerTask) {
    const sb = this.taskFor(req.task_id, routerTask);
    const p = sb.execs.get(req.exec_id);
    if (!p) throw new RpcError(S.NOT_FOUND, `exec ${req.exec_id} not found in task ${req.task_id}`);
    return p;
  }

  mintRouterAccess(sb) {
    if (sb.result) throw new RpcError(S.NOT_FOUND, `task ${sb.taskId} has finished`);
    const exp = Math.floor(Date.now() / 1000) + this.config.router_jwt_ttl_secs;
    const jwt = makeJwt({ exp, task_id: sb.taskId, sub: "fake-modal-router" });
    this.routerJwts.set(jwt, { taskId: sb.taskId, exp });
    return { jwt, url: this.routerUrl };
  }

  imageTag(image) {
    for (const c of image.dockerfile_commands) {
      const m = /^FROM\s+(\S+)/i.exec(c.trim());
      if (m) return m[1];
    }
    return "";
  }

  secretEnv(ids) {
    const env = {};
    for (const id of ids || []) {
      const s = this.secrets.get(id);
      if (!s) throw new RpcError(S.NOT_FOUND, `Secret ${id} not found`);
      Object.assign(env, s.env);
    }
    return env;
  }

  sandboxResultTaskInfo(sb) {
    return {
      id: sb.taskId, started_at: sb.createdAt, finished_at: sb.finishedAt || 0,
      result: sb.result || undefined, enqueued_at: sb.createdAt, sandbox_id: sb.id,
    };
  }

  sandboxInfo(sb) {
    return {
      id: sb.id, created_at: sb.createdAt, task_info: this.sandboxResultTaskInfo(sb), app_id: sb.appId,
      tags: sb.tags, name: sb.name || "", image_id: sb.imageId, timeout_secs: sb.timeoutSecs,
      metadata: { app_id: sb.appId, result: sb.result || undefined },
    };
  }

  createSandbox(req, v2, extraEnv) {
    const app = this.appMustExist(req.app_id);
    const def = req.definition || {};
    const image = this.images.get(def.image_id);
    if (!image) throw new RpcError(S.FAILED_PRECONDITION, `Could not find image with ID ${def.image_id}`);
    if (!image.result || image.result.status !== GS.SUCCESS) {
      throw new RpcError(S.FAILED_PRECONDITION, `Image ${def.image_id} is not built successfully`);
    }
    const name = def.name || "";
    if (name) {
      for (const o of this.sandboxes.values()) {
        if (o.appId === app.id && o.name === name && !o.result) {
          throw new RpcError(S.ALREADY_EXISTS, `Sandbox with name '${name}' already exists in app`);
        }
      }
    }
    const tags = (req.tags || []).map((t) => ({ tag_name: t.tag_name, tag_value: t.tag_value }));
    for (const t of tags) if (!t.tag_name) throw new RpcError(S.INVALID_ARGUMENT, "empty tag name");
    const env = { ...this.secretEnv(def.secret_ids), ...extraEnv };
    const id = v2 ? newV2SandboxId() : newId("sb");
    let createdAt = Date.now() / 1000;
    if (createdAt <= this.lastCreatedAt) createdAt = this.lastCreatedAt + 1e-6;
    this.lastCreatedAt = createdAt;
    const dir = path.join(this.stateDir, "sandboxes", id);
    const rootDir = path.join(dir, "root");
    prepareRoot(rootDir);
    const na = def.network_access;
    const sb = new EventEmitter();
    sb.setMaxListeners(0);
    Object.assign(sb, {
      id, v2, appId: app.id, taskId: newTaskId(), createdAt, finishedAt: 0, name, tags,
      imageId: image.id, imageTag: image.tag, timeoutSecs: def.timeout_secs || 300,
      resources: { memory_mb: def.resources?.memory_mb || 0, memory_mb_max: def.resources?.memory_mb_max || 0, milli_cpu: def.resources?.milli_cpu || 0, milli_cpu_max: def.resources?.milli_cpu_max || 0 },
      idleTimeoutSecs: def.idle_timeout_secs || 0, workdir: def.workdir || "/",
      network: !(def.block_network || (na && na.network_access_type === NET_BLOCKED)),
      env, dir, rootDir, execs: new Map(), entrypoint: null, result: null, lastActivity: Date.now(),
      execPidNs: this.config.exec_pid_namespace,
    });
    sb.cleaned = new Promise((r) => (sb.markCleaned = r));
    sb.holder = new Holder(sb, (m) => this.log(m));
    sb.holder.on("exit", () => this.finishSandbox(sb, GS.INTERNAL_FAILURE, { exception: "the sandbox's container died" }));
    this.sandboxes.set(id, sb);
    this.tasks.set(sb.taskId, sb);
    sb.timer = setTimeout(() => this.finishSandbox(sb, GS.TIMEOUT, { exception: "Sandbox timed out" }), sb.timeoutSecs * 1000);
    if (sb.idleTimeoutSecs > 0) {
      sb.idleTimer = setInterval(() => {
        const busy = [...sb.execs.values()].some((p) => p.running);
        if (!busy && Date.now() - sb.lastActivity > sb.idleTimeoutSecs * 1000) {
          this.finishSandbox(sb, GS.IDLE_TIMEOUT, { exception: "Sandbox idle timeout" });
        }
      }, 250);
    }
    if ((def.entrypoint_args || []).length > 0) {
      try {
        sb.entrypoint = new Proc(sb, {
          id: `${id}/entrypoint`, argv: def.entrypoint_args, env: { ...SANDBOX_BASE_ENV, ...env },
          cwd: sb.workdir, stdoutMode: STDOUT_PIPE, stderrMode: STDERR_PIPE, timeoutSecs: 0, log: (m) => this.log(m),
        });
      } catch (e) {
        this.finishSandbox(sb, GS.INIT_FAILURE, { exception: `cannot start entrypoint: ${e.message}` });
      }
      sb.entrypoint?.on("exit", (x) => {
        const code = x.code ?? 128 + x.signal;
        this.finishSandbox(sb, code === 0 ? GS.SUCCESS : GS.FAILURE, { exitcode: code });
      });
      sb.entrypoint?.on("update", () => sb.emit("update"));
    }
    this.log(`sandbox ${id} created (task ${sb.taskId}, ${v2 ? "V2" : "V1"}, tags ${JSON.stringify(tags)})`);
    return sb;
  }

  finishSandbox(sb, status, { exitcode = 0, exception = "" } = {}) {
    if (sb.result) return false;
    sb.result = { status, exitcode, exception };
    sb.finishedAt = Date.now() / 1000;
    clearTimeout(sb.timer);
    clearInterval(sb.idleTimer);
    const procs = [...sb.execs.values()];
    if (sb.entrypoint) procs.push(sb.entrypoint);
    for (const p of procs) p.kill();
    sb.holder.kill();
    this.log(`sandbox ${sb.id} finished: status ${status} exitcode ${exitcode} ${exception}`);
    sb.emit("update");
    this.events.emit("update");
    Promise.all([...procs.map((p) => p.exited()), sb.holder.gone()]).then(() => {
      fs.rm(sb.dir, { recursive: true, force: true }, () => sb.markCleaned());
    });
    /* Free the (possibly large) output buffers later; streams already open keep
     * their reference and finish normally, new reads get NOT_FOUND. */
    sb.releaseTimer = setTimeout(() => {
      for (const p of procs) p.releaseOutput();
    }, this.config.release_output_after_secs * 1000);
    sb.releaseTimer.unref();
    return true;
  }

  /* A create waits this long for "capacity" (config create_delay_ms). */
  capacityWait() {
    const ms = this.config.create_delay_ms;
    return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
  }

  /* Idempotent creates: the same x-idempotency-key returns the first response. */
  idempotentOnce(rpc, call, fn) {
    const key = call.metadata.get("x-idempotency-key")[0];
    if (!key) return fn();
    const k = `${rpc}\0${key}`;
    let p = this.idempotent.get(k);
    if (!p) {
      p = Promise.resolve().then(fn);
      this.idempotent.set(k, p);
      p.catch(() => this.idempotent.delete(k));
    }
    return p;
  }

  /* -------------------------------------------------------------- control plane */

  controlHandlers(svc) {
    const self = this;
    const getTaskId = (family) => function (req) {
      const sb = self.sandboxFor(req.sandbox_id, "SandboxGetTaskId", family);
      if (sb.result) return { task_result: sb.result };
      if (Date.now() < sb.createdAt * 1000 + self.config.schedule_delay_ms) return {};
      return { task_id: sb.taskId };
    };
    const wait = (family) => async function (req, { call }) {
      const sb = self.sandboxFor(req.sandbox_id, "SandboxWait", family);
      const hold = Math.min(Math.max(req.timeout || 0, 0), MAX_HOLD_SECS) * 1000;
      await self.waitFor(sb, () => !!sb.result, hold, call);
      const res = { metadata: { app_id: sb.appId } };
      if (sb.result) res.result = sb.result;
      return res;
    };
    const terminate = (family) => function (req) {
      const sb = self.sandboxFor(req.sandbox_id, "SandboxTerminate", family);
      if (sb.result) return { existing_result: sb.result };
      self.finishSandbox(sb, GS.TERMINATED, { exitcode: 0, exception: "Sandbox terminated" });
      return {};
    };
    const list = (family) => function (req) {
      const want = req.tags || [];
      const rows = [...self.sandboxes.values()]
        .filter((sb) => family === "v2" || !sb.v2)
        .filter((sb) => !req.app_id || sb.appId === req.app_id)
        .filter((sb) => req.include_finished || !sb.result)
        .filter((sb) => !req.before_timestamp || sb.createdAt < req.before_timestamp)
        .filter((sb) => want.every((t) => sb.tags.some((x) => x.tag_name === t.tag_name && x.tag_value === t.tag_value)))
        .sort((a, b) => b.createdAt - a.createdAt)
        .slice(0, LIST_PAGE);
      return { sandboxes: rows.map((sb) => self.sandboxInfo(sb)) };
    };
    const fromName = (family) => function (req) {
      const app = self.apps.get(`${req.environment_name || ""}\0${req.app_name}`);
      if (!app) throw new RpcError(S.NOT_FOUND, `App '${req.app_name}' not found`);
      const cands = [...self.sandboxes.values()]
        .filter((sb) => sb.appId === app.id && sb.name === req.sandbox_name && (family === "v2" ? sb.v2 : !sb.v2))
        .sort((a, b) => b.createdAt - a.createdAt);
      const sb = cands.find((x) => !x.result) || (req.include_terminated ? cands[0] : undefined);
      if (!sb) throw new RpcError(S.NOT_FOUND, `Sandbox '${req.sandbox_name}' not found`);
      return { sandbox_id: sb.id, metadata: { app_id: sb.appId, result: sb.result || undefined } };
    };
    const tagsGet = (family) => function (req) {
      return { tags: self.sandboxFor(req.sandbox_id, "SandboxTagsGet", family).tags };
    };
    const tagsSet = (family) => function (req) {
      const sb = self.sandboxFor(req.sandbox_id, "SandboxTagsSet", family);
      sb.tags = (req.tags || []).map((t) => ({ tag_name: t.tag_name, tag_value: t.tag_value }));
      return {};
    };
    return this.bindAll(svc, "client", {
      AuthTokenGet() {
        const exp = Math.floor(Date.now() / 1000) + this.config.auth_token_ttl_secs;
        const token = makeJwt({ exp, sub: this.tokenId });
        this.authTokens.set(token, exp);
        return { token };
      },
      AppGetOrCreate(req) {
        const name = req.app_name;
        if (!name) throw new RpcError(S.INVALID_ARGUMENT, "app_name is required");
        const key = `${req.environment_name || ""}\0${name}`;
        let app = this.apps.get(key);
        if (app && req.object_creation_type === OCT.CREATE_FAIL_IF_EXISTS) throw new RpcError(S.ALREADY_EXISTS, `App '${name}' already exists`);
        if (!app) {
          if (req.object_creation_type === OCT.UNSPECIFIED) throw new RpcError(S.NOT_FOUND, `App '${name}' not found`);
          app = { id: newId("ap"), name, environment: req.environment_name || "" };
          this.apps.set(key, app);
          this.appsById.set(app.id, app);
        }
        return { app_id: app.id };
      },
      EnvironmentGetOrCreate(req) {
        const name = req.deployment_name || "main";
        let env = this.envs.get(name);
        if (!env) {
          env = { id: newId("en"), name };
          this.envs.set(name, env);
        }
        return {
          environment_id: env.id,
          metadata: { name, settings: { image_builder_version: this.config.image_builder_version, webhook_suffix: "" } },
        };
      },
      SecretGetOrCreate(req) {
        const t = req.object_creation_type;
        if (t === OCT.EPHEMERAL || !req.deployment_name) {
          const s = { id: newId("st"), env: { ...req.env_dict } };
          this.secrets.set(s.id, s);
          return { secret_id: s.id };
        }
        const key = `named\0${req.environment_name || ""}\0${req.deployment_name}`;
        let s = this.secrets.get(key);
        if (!s) {
          if (t === OCT.UNSPECIFIED) throw new RpcError(S.NOT_FOUND, `Secret '${req.deployment_name}' not found`);
          s = { id: newId("st"), env: { ...req.env_dict } };
          this.secrets.set(key, s);
          this.secrets.set(s.id, s);
        } else if (t === OCT.CREATE_OVERWRITE_IF_EXISTS) {
          s.env = { ...req.env_dict };
        }
        return { secret_id: s.id };
      },
      ImageGetOrCreate(req) {
        if (req.app_id) this.appMustExist(req.app_id);
        const img = req.image || { dockerfile_commands: [], base_images: [] };
        const files = (img.context_files || []).map((f) => [f.filename, crypto.createHash("sha256").update(f.data || Buffer.alloc(0)).digest("hex")]);
        const key = JSON.stringify([img.dockerfile_commands, (img.base_images || []).map((b) => [b.docker_tag, b.image_id]), files]);
        let image = this.imagesByKey.get(key);
        if (image && image.result && image.result.status !== GS.SUCCESS) image = null; /* rebuild failures */
        if (!image) image = this.buildImage(key, img);
        const res = { image_id: image.id };
        if (image.result) {
          res.result = image.result;
          if (image.result.status === GS.SUCCESS) res.metadata = {};
        }
        return res;
      },
      async ImageJoinStreaming(req, { call }) {
        const image = this.images.get(req.image_id);
        if (!image) throw new RpcError(S.NOT_FOUND, `Image ${req.image_id} not found`);
        const hold = Math.min(req.timeout > 0 ? req.timeout : MAX_HOLD_SECS, MAX_HOLD_SECS) * 1000;
        const deadline = Date.now() + hold;
        let next = Number.parseInt(req.last_entry_id || "0", 10) || 0;
        for (;;) {
          while (next < image.logs.length) {
            const entry = image.logs[next];
            next += 1;
            if (!(await this.send(call, { task_logs: [{ data: entry, timestamp: Date.now() / 1000, file_descriptor: 2 }], entry_id: String(next) }))) return;
          }
          if (image.result) {
            const msg = { result: image.result, entry_id: String(next), eof: true };
            if (image.result.status === GS.SUCCESS) msg.metadata = {};
            await this.send(call, msg);
            return;
          }
          const left = deadline - Date.now();
          if (left <= 0 || call.cancelled) return; /* client reopens with last_entry_id */
          await this.waitFor(image.ev, () => image.logs.length > next || !!image.result, left, call);
        }
      },
      SandboxCreate(req, { call }) {
        return this.idempotentOnce("SandboxCreate", call, async () => {
          await this.capacityWait();
          const sb = this.createSandbox(req, false, {});
          return { sandbox_id: sb.id, metadata: { app_id: sb.appId } };
        });
      },
      SandboxCreateV2(req, { call }) {
        return this.idempotentOnce("SandboxCreateV2", call, async () => {
          await this.capacityWait();
          const extra = { ...(req.ephemeral_secrets?.contents || {}) };
          for (const src of req.secret_sources || []) {
            if (src.secret_id) Object.assign(extra, this.secretEnv([src.secret_id]));
            Object.assign(extra, src.env?.contents || {});
          }
          const sb = this.createSandbox(req, true, extra);
          return {
            sandbox_id: sb.id, task_id: sb.taskId, metadata: { app_id: sb.appId },
            command_router_access: this.mintRouterAccess(sb), sandbox_token: "",
          };
        });
      },
      SandboxGetTaskId: getTaskId("v1"),
      SandboxGetTaskIdV2: getTaskId("v2"),
      TaskGetCommandRouterAccess(req) {
        return this.mintRouterAccess(this.taskFor(req.task_id));
      },
      SandboxGetCommandRouterAccess(req) {
        const sb = req.target === "task_id" ? this.taskFor(req.task_id) : this.sandboxFor(req.sandbox_id, "SandboxGetCommandRouterAccess", "v2");
        return { ...this.mintRouterAccess(sb), worker_ipv4_address: "127.0.0.1" };
      },
      SandboxWait: wait("v1"),
      SandboxWaitV2: wait("v2"),
      SandboxTerminate: terminate("v1"),
      SandboxTerminateV2: terminate("v2"),
      SandboxList: list("v1"),
      SandboxListV2: list("v2"),
      SandboxGetFromName: fromName("v1"),
      SandboxGetFromNameV2: fromName("v2"),
      SandboxTagsGet: tagsGet("v1"),
      SandboxTagsGetV2: tagsGet("v2"),
      SandboxTagsSet: tagsSet("v1"),
      SandboxTagsSetV2: tagsSet("v2"),
    });
  }

  buildImage(key, img) {
    const image = {
      id: newId("im"), key, tag: this.imageTag(img), commands: [...img.dockerfile_commands],
      contextFiles: (img.context_files || []).map((f) => ({ filename: f.filename, bytes: (f.data || []).length })),
      logs: [], result: null, ev: new EventEmitter(), createdAt: Date.now() / 1000,
    };
    image.ev.setMaxListeners(0);
    this.images.set(image.id, image);
    this.imagesByKey.set(key, image);
    image.logs.push(`Building image ${image.id}\n`);
    for (const c of image.commands) image.logs.push(`=> ${c}\n`);
    const complete = () => {
      if (this.failImageTags.has(image.tag)) {
        image.logs.push(`fake-modal: build of ${image.tag} failed (configured to fail)\n`);
        image.result = { status: GS.FAILURE, exitcode: 1, exception: `Image build for ${image.id} failed: pulling '${image.tag}' failed (fake-modal configured failure)` };
      } else {
        image.logs.push(`Built image ${image.id}\n`);
        image.result = { status: GS.SUCCESS, exitcode: 0, exception: "" };
      }
      this.log(`image ${image.id} (${image.tag}) built: status ${image.result.status}`);
      image.ev.emit("update");
    };
    if (this.config.image_build_ms > 0) setTimeout(complete, this.config.image_build_ms);
    else complete();
    return image;
  }

  /* -------------------------------------------------------------- router */

  async streamLog(call, proc, log, offset, fdName, cutKey) {
    let pos = Math.max(0, offset);
    let sent = 0;
    const cut = this.takeInjection(["stdio_cut"], "router", cutKey, (i) => (!i.fd || i.fd === fdName) && (!i.exec_id || i.exec_id === proc.id.split("/").pop()));
    for (;;) {
      if (call.cancelled) return;
      if (pos < log.len) {
        let end = Math.min(log.len, pos + CHUNK);
        if (cut) end = Math.min(end, pos + Math.max(0, cut.after_bytes - sent));
        if (end > pos) {
          const data = Buffer.from(log.slice(pos, end));
          if (!(await this.send(call, { data }))) return;
          sent += data.length;
          pos = end;
        }
        if (cut && sent >= cut.after_bytes) {
          if (cut.mode === "end") return;
          throw new RpcError(S.UNAVAILABLE, "fake-modal: injected stdio stream cut");
        }
        continue;
      }
      if (!proc.running) return; /* exited and everything was sent: EOF */
      await this.waitFor(proc, () => log.len > pos || !proc.running, null, call);
    }
  }

  routerHandlers(svc) {
    return this.bindAll(svc, "router", {
      TaskExecStart(req, { routerTask }) {
        const sb = this.taskFor(req.task_id, routerTask);
        if (sb.result) throw new RpcError(S.FAILED_PRECONDITION, `sandbox ${sb.id} has finished`);
        if (!req.exec_id) throw new RpcError(S.INVALID_ARGUMENT, "exec_id is required");
        if (sb.execs.has(req.exec_id)) return {}; /* idempotent per exec_id */
        const argv = req.command_args || [];
        if (argv.length === 0) throw new RpcError(S.INVALID_ARGUMENT, "command_args is empty");
        const env = { ...SANDBOX_BASE_ENV, ...sb.env, ...this.secretEnv(req.secret_ids) };
        for (const src of req.secret_sources || []) {
          if (src.secret_id) Object.assign(env, this.secretEnv([src.secret_id]));
          Object.assign(env, src.env?.contents || {});
        }
        Object.assign(env, req.env || {});
        const p = new Proc(sb, {
          id: `${sb.id}/${req.exec_id}`, argv, env, cwd: req.workdir || sb.workdir,
          stdoutMode: req.stdout_config, stderrMode: req.stderr_config, timeoutSecs: req.timeout_secs || 0,
          log: (m) => this.log(m),
        });
        p.execId = req.exec_id;
        sb.execs.set(req.exec_id, p);
        sb.lastActivity = Date.now();
        p.on("exit", () => { sb.lastActivity = Date.now(); });
        this.log(`exec ${req.exec_id} in ${sb.id}: ${JSON.stringify(argv)}`);
        return {};
      },
      async TaskExecStdioRead(req, { call, routerTask }) {
        const p = this.execFor(req, routerTask);
        if (p.released) throw new RpcError(S.NOT_FOUND, `output of exec ${req.exec_id} is gone: sandbox ${p.sb.id} finished`);
        const stderr = req.file_descriptor === 1;
        if (stderr ? p.errDevnull || p.errToOut : p.outDevnull && !p.errToOut) {
          await this.waitFor(p, () => !p.running, null, call);
          return;
        }
        await this.streamLog(call, p, stderr ? p.err : p.out, req.offset || 0, stderr ? "stderr" : "stdout", "TaskExecStdioRead");
      },
      async TaskExecStdinWrite(req, { routerTask }) {
        const p = this.execFor(req, routerTask);
        p.sb.lastActivity = Date.now();
        await p.writeStdin(req.offset || 0, req.data || Buffer.alloc(0), !!req.eof);
        return {};
      },
      TaskExecStdinWriteStream(call, { routerTask }) {
        return new Promise((resolve, reject) => {
          let p = null;
          let offset = 0;
          let chain = Promise.resolve();
          let failed = false;
          const fail = (e) => { if (!failed) { failed = true; reject(e); } };
          call.on("data", (msg) => {
            chain = chain.then(async () => {
              if (failed) return;
              if (msg.payload === "start") {
                p = this.execFor(msg.start, routerTask);
                offset = Number(msg.start.offset || 0);
                return;
              }
              if (!p) throw new RpcError(S.INVALID_ARGUMENT, "first message must be start");
              if (msg.payload === "data") {
                call.pause();
                try {
                  await p.writeStdin(offset, msg.data, false);
                } finally {
                  call.resume();
                }
                offset += msg.data.length;
              } else if (msg.payload === "end") {
                await p.writeStdin(offset, Buffer.alloc(0), true);
              }
            }).catch(fail);
          });
          call.on("end", () => chain.then(() => (failed ? null : resolve({}))).catch(fail));
          call.on("error", fail);
          call.on("cancelled", () => fail(new RpcError(S.CANCELLED, "cancelled")));
        });
      },
      TaskExecStdinStatus(req, { routerTask }) {
        const p = this.execFor(req, routerTask);
        return { num_bytes_written: p.stdinWritten, closed: p.stdinClosed };
      },
      async TaskExecWait(req, { call, routerTask }) {
        const p = this.execFor(req, routerTask);
        await this.waitFor(p, () => !p.running, null, call);
        if (p.running) throw new RpcError(S.CANCELLED, "wait cancelled");
        return p.exit;
      },
      TaskExecPoll(req, { routerTask }) {
        const p = this.execFor(req, routerTask);
        return p.running ? {} : p.exit;
      },
      async SandboxStdioReadV2(req, { call, routerTask }) {
        const sb = this.taskFor(req.task_id, routerTask);
        const fd = req.file_descriptor === 1 ? "stderr" : "stdout";
        const p = sb.entrypoint;
        if (!p) {
          /* idle sandbox: no output ever; end when the sandbox ends */
          await this.waitFor(sb, () => !!sb.result, null, call);
          return;
        }
        const log = fd === "stderr" ? p.err : p.out;
        const first = Math.min(req.offset || 0, log.len);
        /* We keep all output, so the stream starts where asked. Never send empty data. */
        let pos = first;
        let firstMsg = true;
        for (;;) {
          if (call.cancelled) return;
          if (pos < log.len) {
            const end = Math.min(log.len, pos + CHUNK);
            const msg = { data: Buffer.from(log.slice(pos, end)) };
            if (firstMsg) msg.starting_offset = pos;
            firstMsg = false;
            if (!(await this.send(call, msg))) return;
            pos = end;
            continue;
          }
          if (!p.running) return;
          await this.waitFor(p, () => log.len > pos || !p.running, null, call);
        }
      },
      async SandboxStdinWriteV2(req, { routerTask }) {
        const sb = this.taskFor(req.task_id, routerTask);
        if (!sb.entrypoint) throw new RpcError(S.FAILED_PRECONDITION, "sandbox has no entrypoint process");
        await sb.entrypoint.writeStdin(req.offset || 0, req.data || Buffer.alloc(0), !!req.eof);
        return {};
      },
    });
  }

  /* -------------------------------------------------------------- admin API */

  snapshot() {
    return {
      port: this.port, client_port: this.clientPort, tls: !!this.tls, admin_port: this.adminPort,
      router_url: this.routerUrl, state_dir: this.stateDir,
      config: this.config, fail_image_tags: [...this.failImageTags],
      apps: [...this.appsById.values()],
      images: [...this.images.values()].map((i) => ({ id: i.id, tag: i.tag, commands: i.commands, context_files: i.contextFiles, result: i.result })),
      sandboxes: [...this.sandboxes.values()].map((sb) => ({
        id: sb.id, v2: sb.v2, app_id: sb.appId, task_id: sb.taskId, name: sb.name, tags: sb.tags,
        tags_map: Object.fromEntries(sb.tags.map((t) => [t.tag_name, t.tag_value])),
        image_id: sb.imageId, image_tag: sb.imageTag, created_at: sb.createdAt, finished_at: sb.finishedAt,
        running: !sb.result, result: sb.result, timeout_secs: sb.timeoutSecs, network: sb.network,
        resources: sb.resources,
        root_dir: sb.rootDir, root_exists: fs.existsSync(sb.rootDir),
        entrypoint: sb.entrypoint ? sb.entrypoint.summary() : null,
        execs: [...sb.execs.values()].map((p) => p.summary()),
      })),
    };
  }

  addInjection(body) {
    const inj = { ...body, id: this.nextInjection++, remaining: Number(body.count ?? 1) };
    switch (body.kind) {
      case "unavailable_once": inj.kind = "error"; inj.code = "UNAVAILABLE"; break;
      case "router_unauthenticated_once": inj.kind = "error"; inj.code = "UNAUTHENTICATED"; inj.service = "router"; break;
      case "throttle_once": inj.kind = "throttle"; break;
      case "error": case "throttle": break;
      case "stdio_cut":
        inj.after_bytes = Number(body.after_bytes ?? 0);
        inj.mode = body.mode === "end" ? "end" : "unavailable";
        break;
      case "image_fail":
        if (!body.tag) throw new Error("image_fail needs a tag");
        this.failImageTags.add(body.tag);
        return { id: inj.id, kind: "image_fail", tag: body.tag };
      default:
        throw new Error(`unknown injection kind ${body.kind}`);
    }
    if (inj.kind === "error") {
      inj.code = String(inj.code || "UNAVAILABLE").toUpperCase();
      inj.codeNum = typeof body.code === "number" ? body.code : S[inj.code];
      if (inj.codeNum === undefined) throw new Error(`unknown grpc status ${body.code}`);
    }
    if (!inj.rpc && inj.kind !== "stdio_cut" && !inj.service) throw new Error("injection needs an rpc (or \"*\")");
    this.injections.push(inj);
    return inj;
  }

  killSandboxes(body) {
    const status = GS[String(body.status || "TERMINATED").toUpperCase()] ?? GS.TERMINATED;
    const targets = [...this.sandboxes.values()].filter((sb) => {
      if (sb.result) return false;
      if (body.id) return sb.id === body.id;
      if (body.tag_job !== undefined) return sb.tags.some((t) => t.tag_name === "job" && t.tag_value === String(body.tag_job));
      if (body.tags) return Object.entries(body.tags).every(([k, v]) => sb.tags.some((t) => t.tag_name === k && t.tag_value === String(v)));
      return !!body.all;
    });
    for (const sb of targets) {
      this.finishSandbox(sb, status, { exitcode: Number(body.exitcode ?? 0), exception: body.exception || "Sandbox killed from outside (fake-modal admin)" });
    }
    return { killed: targets.map((sb) => sb.id) };
  }

  handleAdmin(req, res) {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const reply = (code, obj) => {
        res.writeHead(code, { "content-type": "application/json" });
        res.end(JSON.stringify(obj, null, 1) + "\n");
      };
      try {
        const u = new URL(req.url, "http://x");
        const json = body ? JSON.parse(body) : {};
        const route = `${req.method} ${u.pathname}`;
        switch (route) {
          case "GET /health": return reply(200, { ok: true });
          case "GET /state": return reply(200, this.snapshot());
          case "GET /stats": {
            const total = Object.values(this.stats).reduce((a, b) => a + b, 0);
            return reply(200, { total, rpcs: this.stats });
          }
          case "POST /stats/reset":
            this.stats = {};
            this.calls = [];
            this.proxyStats = { connections: 0, cuts: 0, pings: 0 };
            return reply(200, { ok: true });
          case "GET /calls": {
            const rpc = u.searchParams.get("rpc");
            return reply(200, { calls: this.calls.filter((c) => !rpc || c.rpc === rpc) });
          }
          case "GET /proxy": return reply(200, { port: this.clientPort, ...this.proxyStats });
          case "GET /injections": return reply(200, { injections: this.injections, fail_image_tags: [...this.failImageTags] });
          case "POST /inject": return reply(200, this.addInjection(json));
          case "POST /injections/clear":
          case "DELETE /injections":
            this.injections = [];
            this.failImageTags.clear();
            return reply(200, { ok: true });
          case "POST /kill-sandbox": return reply(200, this.killSandboxes(json));
          case "POST /config":
            for (const k of Object.keys(json)) {
              if (!(k in this.config)) throw new Error(`unknown config key ${k}`);
              this.config[k] = json[k];
            }
            return reply(200, this.config);
          default: return reply(404, { error: `no route ${route}` });
        }
      } catch (e) {
        return reply(400, { error: e.message });
      }
    });
  }
}
