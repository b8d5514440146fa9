// bench/uploads: POST /api/jobs with one CSV file (curl through nginx, median of N runs) against
// the bare write-through libfcgi handler (the same form, read in 64 KiB calls and written to a
// file, behind a location set up like labbox's /api/jobs) and nginx's own spool (the file PUT
// with WebDAV: nginx writes it to disk, as it does before handing an upload on). Also the RSS
// of labbox serve during each upload.
import fs from "node:fs";
import path from "node:path";
import { TERMINAL, startStack, waitFor } from "../../tests/integration/harness.mjs";
import { MiB, fmt, median, ratio, run, startBenchNginx } from "./lib.mjs";

const DEFAULT_MAX_FILE = 5 * MiB; /* max_file_bytes' default */

// A CSV file of exactly `bytes` bytes: 32-byte lines (a header, then numbered rows).
function makeCsv(file, bytes) {
  const block = Buffer.alloc(MiB);
  for (let off = 0, i = 0; off < MiB; off += 32, i++) {
    const line = off === 0 ? "subject,condition,score,weights\n"
      : `${String(i).padStart(6, "0")},${i % 2 ? "treated" : "control"},${(50 + (i % 97) * 0.5).toFixed(1).padStart(5, "0")},${(i % 1000 / 1000).toFixed(8)}\n`;
    block.write(line, off, "latin1");
  }
  const fd = fs.openSync(file, "w");
  try {
    for (let left = bytes; left > 0; left -= MiB) {
      const b = Buffer.from(block);
      if (left !== bytes) b.write("000000,control,050.0,0.00000000\n", 0, "latin1");
      const n = Math.min(left, MiB);
      if (n < MiB) b.write("\n", n - 1, "latin1");
      fs.writeSync(fd, b, 0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function memKb(pid, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

// curl one upload; with pid (labbox serve): its RSS before and its peak during the upload
// (VmHWM after resetting it through clear_refs, else VmRSS sampled every 2 ms).
async function curlUpload(args, pid) {
  let before = NaN, peak = NaN, timer = null, reset = false;
  if (pid) {
    try { fs.writeFileSync(`/proc/${pid}/clear_refs`, "5"); reset = true; } catch { /* not permitted */ }
    before = peak = memKb(pid, "VmRSS");
    if (!reset) timer = setInterval(() => { peak = Math.max(peak, memKb(pid, "VmRSS")); }, 2);
  }
  const r = await run("curl", ["-sS", "-H", "Expect:", "-w", "\n%{http_code} %{size_upload} %{time_total}", ...args]);
  if (timer) clearInterval(timer);
  if (pid) peak = reset ? memKb(pid, "VmHWM") : Math.max(peak, memKb(pid, "VmRSS"));
  if (r.code !== 0) throw new Error(`curl ${args.join(" ")}: exit ${r.code} ${r.err}`);
  const lines = r.out.split("\n");
  const [status, sent, total] = lines.pop().split(" ").map(Number);
  return { status, sent, seconds: total, body: lines.join("\n"), rss_before_kb: before, rss_peak_kb: peak };
}

export async function uploads(ctx) {
  const { opt } = ctx;
  const maxMiB = Math.max(...opt.sizes);
  const limit = Math.ceil(maxMiB + 1) * MiB;
  const maxBody = `${Math.ceil(maxMiB + 8)}m`;
  const stacks = {};
  let bench = null;
  try {
    stacks.small = await startStack({ config: { max_queue: 100000, max_concurrent: 2, identity: "none" } });
    if (opt.sizes.some((m) => m * MiB > DEFAULT_MAX_FILE)) {
      stacks.big = await startStack({ maxBody, config: { max_queue: 100000, max_concurrent: 2, identity: "none",
        max_file_bytes: limit, max_job_bytes: Math.max(limit, 50 * MiB) } });
    }
    bench = await startBenchNginx(path.join(ctx.tmp, "uploads-nginx"), { maxBody });
    const out = [];
    for (const mib of opt.sizes) {
      const size = Math.round(mib * MiB);
      const stack = size <= DEFAULT_MAX_FILE ? stacks.small : stacks.big;
      const file = path.join(ctx.tmp, `data-${mib}.csv`);
      makeCsv(file, size);
      const form = ["-F", `files=@${file};type=text/csv`, "-F", 'params={"mode":"ok"}'];
      const lab = [], bare = [], spool = [], rise = [];
      for (let i = 0; i < opt.uploadRuns; i++) {
        ctx.progress(`uploads: ${mib} MiB, run ${i + 1}/${opt.uploadRuns} ...`);
        /* Each run: labbox, then the two baselines, so drift hits all three alike. */
        const r = await curlUpload([...form, `${stack.url}/api/jobs`], stack.serve.pid);
        let job = null;
        try { job = JSON.parse(r.body); } catch { /* checked below */ }
        if (r.status !== 201 || job?.inputs?.[0]?.size !== size) throw new Error(`upload of ${mib} MiB: ${r.status} ${r.body.slice(0, 300)}`);
        lab.push(r.seconds);
        rise.push(r.rss_peak_kb - r.rss_before_kb);
        /* The job copies the file into its sandbox: let it end before the next run (untimed). */
        const end = await waitFor(stack, job.id, (j) => TERMINAL.includes(j.state), 180000);
        if (end.state !== "succeeded") throw new Error(`the ${mib} MiB job ended ${end.state}`);
        const b = await curlUpload([...form, `${bench.url}/bare/upload`]);
        if (b.status !== 201 || b.sent < size) throw new Error(`bare upload: ${b.status} ${b.body}`);
        bare.push(b.seconds);
        bench.clearUploads();
        const s = await curlUpload(["-T", file, `${bench.url}/spool/f`]);
        if (![201, 204].includes(s.status) || s.sent !== size) throw new Error(`spool: ${s.status}, ${s.sent} bytes`);
        spool.push(s.seconds);
        fs.rmSync(path.join(bench.dir, "spool/f"), { force: true });
      }
      fs.rmSync(file, { force: true });
      const mbs = (sec) => size / MiB / sec;
      const o = { mib, size, runs: opt.uploadRuns, labbox_s: lab, bare_s: bare, spool_s: spool,
        labbox_mib_s: mbs(median(lab)), bare_mib_s: mbs(median(bare)), spool_mib_s: mbs(median(spool)),
        serve_rss_rise_kb: Math.max(...rise) };
      out.push(o);
      ctx.row({ bench: "uploads", figure: `upload ${mib} MiB (one file), MiB/s`, value: o.labbox_mib_s,
        baseline: "bare libfcgi handler writing the body", base: o.bare_mib_s, ratio: ratio(o.labbox_mib_s, o.bare_mib_s),
        target: ">= 0.8x", note: `serve RSS +${fmt(o.serve_rss_rise_kb / 1024)} MiB` });
      ctx.row({ bench: "uploads", figure: "  nginx's own PUT spool, MiB/s", value: o.spool_mib_s, baseline: "",
        base: NaN, ratio: NaN, target: "", note: `labbox/spool ${fmt(ratio(o.labbox_mib_s, o.spool_mib_s), 2)}` });
    }
    return { sizes: out };
  } finally {
    bench?.stop();
    for (const s of Object.values(stacks)) await s.stop();
  }
}
