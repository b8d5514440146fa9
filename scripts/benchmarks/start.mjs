// bench/start: from POST /api/jobs (a 1 KiB file) to the agent's first line on the job's event
// stream, the client opening the stream as soon as it has the id; the agent is
// `sh -c 'echo first'`. Baseline: bare bwrap running the same command in fresh namespaces, from
// spawn to its first stdout byte. One at a time, N runs each, interleaved; medians. Where
// labbox's time goes comes from the job's own log (its state lines and the agent's line carry
// the server's realtime ms): the POST, then 201 -> staging (the dispatcher and the supervisor's
// start), staging -> running (the work dir, the workspace, bwrap's spawn), running -> the line
// logged, logged -> on the client's stream.
import { spawn } from "node:child_process";
import http from "node:http";
import { TERMINAL, logRecords, startStack, waitFor } from "../../tests/integration/harness.mjs";
import { fmt, multipart, post, ratio, stats } from "./lib.mjs";

const COMMAND = "echo first";
const BWRAP = ["--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
  "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
  "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp", "--", "sh", "-c", COMMAND];
const now = () => Number(process.hrtime.bigint()) / 1e6;

function bareOnce() {
  return new Promise((resolve, reject) => {
    const t0 = now();
    let first = NaN, out = "";
    const child = spawn("bwrap", BWRAP, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (d) => {
      if (!out) first = now();
      out += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 && out === "first\n" ? resolve(first - t0)
      : reject(new Error(`bwrap exited ${code} with ${JSON.stringify(out)}`))));
  });
}

// The first stdout line on the job's event stream; resolves the time it arrived.
function firstLine(stack, id) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const req = http.get({ host: "127.0.0.1", port: stack.port, path: `/api/jobs/${id}/events` }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`events: ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      res.on("data", (d) => {
        const t = now();
        buf += d;
        for (const m of buf.matchAll(/event: log\nid: \d+\ndata: (.*)\n\n/g)) {
          const rec = JSON.parse(m[1]);
          if (rec.stream === "stdout" && rec.line === "first") {
            req.destroy();
            resolve(t);
            return;
          }
        }
        if (/event: end\n/.test(buf)) reject(new Error(`the job ended without printing: ${buf.slice(0, 500)}`));
      });
    });
    req.on("error", (e) => { if (!req.destroyed) reject(e); });
  });
}

// One job: the whole time and its phases (ms; realtime stamps of ms resolution).
async function labboxOnce(stack, form, agent) {
  const t0 = now(), w0 = Date.now();
  const r = await post(`${stack.url}/api/jobs`, form.body, form.contentType, agent);
  if (r.status !== 201) throw new Error(`POST: ${r.status} ${r.body.slice(0, 300)}`);
  const w1 = Date.now();
  const id = JSON.parse(r.body).id;
  const t1 = await firstLine(stack, id);
  const w2 = Date.now();
  const end = await waitFor(stack, id, (j) => TERMINAL.includes(j.state));
  if (end.state !== "succeeded") throw new Error(`the job ended ${end.state}`);
  const recs = await logRecords(stack, id);
  const at = (pred) => recs.find(pred)?.t ?? NaN;
  const staging = at((x) => x.stream === "system" && x.line.startsWith("state: staging"));
  const running = at((x) => x.stream === "system" && x.line.startsWith("state: running"));
  const line = at((x) => x.stream === "stdout" && x.line === "first");
  return { total: t1 - t0, phases: { post: w1 - w0, to_staging: staging - w1, to_running: running - staging,
    to_line: line - running, to_client: w2 - line } };
}

export async function start(ctx) {
  const { opt } = ctx;
  const stack = await startStack({ agentCommand: `sh -c '${COMMAND}'`, config: { max_concurrent: 2 } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const form = multipart([{ name: "data.csv", data: "subject,score\n1,2.5\n".padEnd(1023, "#") + "\n", type: "text/csv" }]);
    const lab = [], bare = [], phases = {};
    for (let i = 0; i <= opt.startRuns; i++) {
      ctx.progress(`start: run ${i}/${opt.startRuns}${i === 0 ? " (warm-up)" : ""} ...`);
      const a = await labboxOnce(stack, form, agent);
      const b = await bareOnce();
      if (i > 0) {
        lab.push(a.total);
        for (const [k, v] of Object.entries(a.phases)) (phases[k] ||= []).push(v);
        bare.push(b);
      }
    }
    const L = stats(lab), B = stats(bare);
    const P = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, stats(v).p50]));
    ctx.row({ bench: "start", figure: "POST -> agent's first line on the stream, p50 ms", value: L.p50,
      baseline: "bare bwrap, same sh -c echo", base: B.p50, ratio: ratio(L.p50, B.p50),
      target: "<= bare + 5 ms", note: `labbox - bare = ${fmt(L.p50 - B.p50, 1)} ms; p90 ${fmt(L.p90)} vs ${fmt(B.p90)}; ` +
        `phase p50s: ${Object.entries(P).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(", ")}` });
    return { runs: opt.startRuns, labbox_ms: L, bare_ms: B, labbox_all: lab, bare_all: bare, phases_p50_ms: P, phases };
  } finally {
    agent.destroy();
    await stack.stop();
  }
}
