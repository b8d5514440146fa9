// bench/reads: GET /api/jobs/<id> of a finished job with wrk through nginx, against the bare
// fixed-bytes libfcgi handler (the same bytes, 16 threads, behind a location set up like
// labbox's /api/) and nginx serving the same bytes as a static file; and the ndjson log of a
// 1,000-line job against the same bytes as a static file. The first three run in rounds.
import fs from "node:fs";
import path from "node:path";
import { startStack, upload, waitFor } from "../../tests/integration/harness.mjs";
import { fmt, ratio, startBenchNginx, wrk } from "./lib.mjs";

async function bytes(url) {
  const res = await fetch(url);
  const buf = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${buf.toString().slice(0, 300)}`);
  return { buf, type: res.headers.get("content-type") };
}

export async function reads(ctx) {
  const { opt } = ctx;
  const w = { threads: opt.wrkThreads, connections: opt.connections, duration: opt.duration };
  const stack = await startStack({ config: { max_queue: 100000, max_concurrent: 2, identity: "none" } });
  let bench = null;
  try {
    ctx.progress("reads: a job printing 1,000 lines ...");
    const up = await upload(stack, [{ name: "data.csv", data: "subject,score\n1,2.5\n2,3.5\n", type: "text/csv" }],
      { mode: "ok", lines: 1000 });
    if (up.status !== 201) throw new Error(`upload: ${up.status} ${JSON.stringify(up.body)}`);
    const job = await waitFor(stack, up.body.id);
    if (job.state !== "succeeded") throw new Error(`the job ended ${job.state}`);
    const jobPath = `/api/jobs/${up.body.id}`, logsPath = `${jobPath}/logs?format=ndjson`;
    const jobBody = await bytes(stack.url + jobPath);
    if (!/^application\/json/.test(jobBody.type)) throw new Error(`job status is ${jobBody.type}`);
    bench = await startBenchNginx(path.join(ctx.tmp, "reads-nginx"), { readBody: jobBody.buf });
    fs.writeFileSync(path.join(bench.dir, "static/job.json"), jobBody.buf);
    fs.writeFileSync(path.join(bench.dir, "static/logs.ndjson"), (await bytes(stack.url + logsPath)).buf);
    const same = (await bytes(`${bench.url}/bare/read`)).buf;
    if (!same.equals(jobBody.buf)) throw new Error("the bare handler does not answer the job's bytes");

    /* Rounds of the three, interleaved, so a change in the machine's load hits all alike; the
     * round with the median labbox/bare ratio is the figure. */
    const rounds = [];
    for (let i = 0; i < opt.readRounds; i++) {
      const round = {};
      for (const [k, url] of [["bare", `${bench.url}/bare/read`], ["labbox", stack.url + jobPath],
        ["static", `${bench.url}/static/job.json`]]) {
        ctx.progress(`reads: round ${i + 1}/${opt.readRounds}: wrk ${opt.duration}s ${k} ...`);
        round[k] = await wrk(url, w);
      }
      rounds.push(round);
    }
    rounds.sort((a, b) => a.labbox.rps / a.bare.rps - b.labbox.rps / b.bare.rps);
    const res = { ...rounds[Math.floor(rounds.length / 2)], rounds };
    for (const [k, url] of [["logs", stack.url + logsPath], ["logs_static", `${bench.url}/static/logs.ndjson`]]) {
      ctx.progress(`reads: wrk ${opt.duration}s ${k} ...`);
      res[k] = await wrk(url, w);
    }
    for (const k of ["bare", "labbox", "static", "logs", "logs_static"]) {
      if (res[k].non2xx || res[k].socket_errors) ctx.progress(`reads: ${k}: ${res[k].non2xx} non-2xx, ${res[k].socket_errors} socket errors`);
    }
    const errs = (r) => r.non2xx + r.socket_errors;
    ctx.row({ bench: "reads", figure: `GET /api/jobs/<id> (${jobBody.buf.length} B), req/s`, value: res.labbox.rps,
      baseline: "bare libfcgi handler, same bytes", base: res.bare.rps, ratio: ratio(res.labbox.rps, res.bare.rps),
      target: ">= 0.8x", note: `median of ${rounds.length} rounds (ratios ${rounds.map((r) => fmt(r.labbox.rps / r.bare.rps, 2)).join(", ")}); ` +
        `p99 ${fmt(res.labbox.p99_ms, 2)} vs ${fmt(res.bare.p99_ms, 2)} ms; errors ${errs(res.labbox)}` });
    ctx.row({ bench: "reads", figure: "  the same bytes, static file", value: res.static.rps,
      baseline: "", base: NaN, ratio: NaN, target: "", note: `p99 ${fmt(res.static.p99_ms, 2)} ms` });
    ctx.row({ bench: "reads", figure: "GET .../logs?format=ndjson (1,000 lines), req/s", value: res.logs.rps,
      baseline: "nginx static file, same bytes", base: res.logs_static.rps, ratio: ratio(res.logs.rps, res.logs_static.rps),
      target: "", note: `p99 ${fmt(res.logs.p99_ms, 2)} ms` });
    return { wrk: w, job_bytes: jobBody.buf.length, ...res };
  } finally {
    bench?.stop();
    await stack.stop();
  }
}
