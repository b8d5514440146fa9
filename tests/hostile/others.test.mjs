// others: other people's data on the same host (issue 9). A job id is the only credential: no
// other local user, and no other job, may learn one from the process table, mount tables,
// cgroup paths or nginx's logs, nor read a job's files even knowing its id; sandbox_dir cannot
// be planted by another user. Walls: core/scheduler.c (the id on a pipe), util/id.c (id_alias
// names work dirs and cgroups), core/jobstore.c (modes, the output group), util/owner.c
// (sandbox_dir), nginx/http.conf.template (the access log's format writes <id> for an id).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import os from "node:os";
import {
  ATTACKER, UNIT_CAPS, asUser, attack, attackerStack, fs, getJSON, path, serviceUser, upload, waitFor, workAlias, CSV,
} from "./hostile.mjs";
import { LABBOX } from "../integration/harness.mjs";

// Can user read file p (or list directory p)?
const tryRead = (who, p) => asUser(who, ["sh", "-c",
  `if [ -d "$1" ]; then ls "$1"; else cat "$1"; fi >/dev/null 2>&1`, "sh", p]).status === 0;

describe("job ids stay out of sight", () => {
  let s;
  before(async () => {
    s = await attackerStack({ max_concurrent: 3, wall_timeout: 60 });
  });
  after(async () => s?.stop());

  test("no process table, mount table or cgroup path shows a job id to another user or job", async () => {
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const r = await upload(s, [{ name: "a.csv", data: CSV }], { attack: "whoami", seconds: 8 });
      ids.push(r.body.id);
    }
    for (const id of ids) await waitFor(s, id, (j) => j.state === "running");
    await new Promise((res) => setTimeout(res, 500));
    // As an unprivileged host user: the attacker's find-ids (its params in a file, so that the
    // scanner's own argv and environment hold no id).
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-ids-"));
    try {
      fs.chmodSync(tmp, 0o755);
      fs.writeFileSync(path.join(tmp, "params.json"), JSON.stringify({ attack: "find-ids", needles: ids }));
      fs.mkdirSync(path.join(tmp, "out"), { mode: 0o777 });
      fs.chmodSync(path.join(tmp, "out"), 0o777);
      const r = asUser("nobody", ["/usr/bin/python3", path.join(ATTACKER, "agent.py")], "",
        { LABBOX_INPUT_DIR: tmp, LABBOX_OUTPUT_DIR: path.join(tmp, "out") });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.split("\n").filter((l) => l.startsWith("found")), ["found none"], r.stdout);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    // From a third job.
    const { lines } = await attack(s, { attack: "find-ids", needles: ids });
    assert.deepEqual(lines.filter((l) => l.startsWith("found")), ["found none"]);
    // The work dirs and cgroups are named by an alias, which is no credential.
    for (const id of ids) {
      assert.ok(!fs.existsSync(path.join(s.dir, "sandboxes", id)));
      assert.notEqual(workAlias(id), id);
    }
    for (const id of ids) await waitFor(s, id);
  });

  test("without an output group, a job's log, record and work dir are still private", async () => {
    const r = await upload(s, [{ name: "data.csv", data: CSV }], { attack: "whoami", seconds: 3 });
    const id = r.body.id;
    await waitFor(s, id, (j) => j.state === "running");
    const job = path.join(s.data, "jobs", id);
    // (inputs and outputs are nginx's to send: without a group, whoever has the id reads them)
    for (const p of [path.join(job, "log.jsonl"), path.join(job, "job.json"), path.join(job, "lock"),
      path.join(s.dir, "sandboxes", workAlias(id)), path.join(s.dir, "sandboxes", workAlias(id), "inputs/data.csv")])
      assert.ok(!tryRead("nobody", p), `nobody reads ${p}`);
    await waitFor(s, id);
  });
});

describe("nginx's logs hold no job id", () => {
  let s;
  before(async () => {
    // Signed-in users, so that GET /api/jobs takes a cursor (which holds a job id).
    s = await attackerStack({ wall_timeout: 60 }, { users: { alice: "pw-alice" } });
  });
  after(async () => s?.stop());

  test("every route that carries an id is logged with <id>; the logs are not world-readable", async () => {
    const a = await attack(s, { attack: "report" });
    const b = await attack(s, { attack: "bad-names" });
    const ids = [a.id, b.id];
    const get = async (p) => {
      const res = await fetch(s.url + p, { headers: s.auth(s.user) });
      await res.arrayBuffer();
      return res.status;
    };
    // The API, a view (/_labbox_view/), a download (/_labbox_outputs/), the zips, the event
    // stream, a missing output, a page of the job list and the page after it (?cursor=).
    const list = await getJSON(s, "/api/jobs?limit=1");
    assert.equal(list.status, 200);
    assert.ok(list.body.next?.includes(list.body.jobs[0].id), JSON.stringify(list.body));
    for (const p of [`/api/jobs/${a.id}`, `/api/jobs/${a.id}/logs`, `/api/jobs/${a.id}/events`,
      `/api/jobs/${a.id}/outputs/report.html?view=1`, `/api/jobs/${a.id}/outputs/notes.txt`,
      `/api/jobs/${a.id}/outputs.zip`, `/api/jobs/${a.id}/inputs.zip`, `/api/jobs/${b.id}/outputs/plain.txt`,
      `/api/jobs/${b.id}/outputs/missing.txt`, `/api/jobs?limit=1&cursor=${encodeURIComponent(list.body.next)}`])
      assert.ok([200, 404].includes(await get(p)), p);
    assert.equal(await get(`/api/jobs/${a.id}/outputs/report.html?view=1`), 200);
    // The request is logged once nginx is done with it; give it a moment.
    const logs = path.join(s.dir, "nginx");
    const access = path.join(logs, "access.log");
    let text = "";
    for (let i = 0; i < 50 && !text.includes("cursor="); i++) {
      text = fs.readFileSync(access, "utf8");
      await new Promise((res) => setTimeout(res, 100));
    }
    const error = fs.readFileSync(path.join(logs, "error.log"), "utf8");
    for (const id of ids) {
      assert.ok(!text.includes(id), `the access log holds ${id}:\n${text}`);
      assert.ok(!error.includes(id), `the error log holds ${id}:\n${error}`);
    }
    for (const want of ["GET /api/jobs/<id> ", "GET /api/jobs/<id>/events ", "GET /api/jobs/<id>/outputs/report.html?view=1 ",
      "GET /api/jobs/<id>/outputs/plain.txt ", "GET /api/jobs?limit=1&cursor="])
      assert.ok(text.includes(want), `the access log has no "${want}":\n${text}`);
    // What nginx writes is its own: no other local user reads (or lists) it.
    for (const p of [access, path.join(logs, "error.log"), logs]) {
      assert.equal(fs.statSync(p).mode & 0o007, 0, `${p} is open to others`);
      assert.ok(!tryRead("nobody", p), `nobody reads ${p}`);
    }
  });
});

describe("another local user cannot read a job's files, even knowing its id", () => {
  let user, s;
  before(async () => {
    // As deployed: labbox's own user in nginx's group (www-data), which reads the outputs.
    user = serviceUser(["www-data"]);
    s = await attackerStack({ output_group: "www-data", wall_timeout: 60 },
      { runAs: user.name, caps: UNIT_CAPS });
  });
  after(async () => {
    await s?.stop();
    user?.remove();
  });

  test("log, record and work dir are labbox's; inputs and outputs only its and nginx's group", async () => {
    const r = await upload(s, [{ name: "data.csv", data: CSV }], { attack: "whoami", seconds: 4 });
    const id = r.body.id;
    await waitFor(s, id, (j) => j.state === "running");
    const job = path.join(s.data, "jobs", id);
    const work = path.join(s.dir, "sandboxes", workAlias(id));
    for (const p of [path.join(job, "log.jsonl"), path.join(job, "job.json"), path.join(job, "lock"),
      work, path.join(work, "inputs/data.csv"), path.join(s.dir, "sandboxes")]) {
      for (const who of ["nobody", "www-data"])
        assert.ok(!tryRead(who, p), `${who} reads ${p}`);
    }
    for (const p of [path.join(job, "inputs/data.csv"), path.join(job, "inputs/params.json"), path.join(job, "inputs")])
      assert.ok(!tryRead("nobody", p), `nobody reads ${p}`);
    assert.ok(tryRead("www-data", path.join(job, "inputs/data.csv")), "nginx's group reads the inputs (downloads)");
    await waitFor(s, id);
    const out = await attack(s, { attack: "bad-names" });
    const plain = path.join(s.data, "jobs", out.id, "outputs/plain.txt");
    assert.ok(fs.existsSync(plain));
    assert.ok(!tryRead("nobody", plain), "nobody reads an output");
    assert.ok(!tryRead("nobody", path.join(s.data, "jobs", out.id, "outputs.zip")), "nobody reads the zip");
    assert.ok(tryRead("www-data", plain), "nginx's group reads the outputs");
    assert.ok(tryRead("www-data", path.join(s.data, "jobs", out.id, "outputs.zip")), "and the zip");
    // nginx (through the output group) still sends them.
    const list = (await getJSON(s, `/api/jobs/${out.id}/outputs`)).body.outputs;
    const dl = await fetch(`${s.url}${list.find((o) => o.path === "plain.txt").url}`);
    assert.equal(dl.status, 200);
    assert.equal(await dl.text(), "plain\n");
  });
});

describe("sandbox_dir is labbox's own", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "labbox-sbdir-"));
  fs.chmodSync(tmp, 0o711);
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const agentDir = path.join(path.dirname(new URL(import.meta.url).pathname), "agent");
  const check = (dir) => spawnSync(LABBOX, ["check-config"], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, LABBOX_DATA_DIR: path.join(tmp, "data"), LABBOX_SANDBOX_DIR: dir, LABBOX_AGENT_DIR: agentDir },
  });

  test("the default is /var/lib/labbox/sandboxes, below root's /var/lib", () => {
    const r = spawnSync(LABBOX, ["check-config", "--print"], { encoding: "utf8", env: { PATH: process.env.PATH, LABBOX_AGENT_DIR: agentDir } });
    assert.match(r.stdout, /^sandbox_dir = "?\/var\/lib\/labbox\/sandboxes"?$/m);
  });

  test("a directory another user made (a squat in a world-writable dir) is refused", async () => {
    const squat = path.join(tmp, "squat");
    fs.mkdirSync(squat, { mode: 0o755 });
    fs.chownSync(squat, 65534, 65534); // nobody's
    const r = check(squat);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /sandbox_dir: .*squat belongs to another user/);
    // serve refuses to start on it.
    await assert.rejects(attackerStack({ sandbox_dir: squat }), /belongs to another user/);
  });

  test("a group- or world-writable directory is refused", () => {
    const open = path.join(tmp, "open");
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const r = check(open);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /writable by group or others/);
  });

  test("a symbolic link is refused, even to a good directory", () => {
    const good = path.join(tmp, "good");
    fs.mkdirSync(good, { mode: 0o711 });
    assert.equal(check(good).status, 0, check(good).stderr);
    fs.symlinkSync(good, path.join(tmp, "link"));
    const r = check(path.join(tmp, "link"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is a symbolic link/);
  });

  test("a directory below one another user controls is refused", () => {
    const theirs = path.join(tmp, "theirs");
    fs.mkdirSync(theirs, { mode: 0o755 });
    fs.chownSync(theirs, 65534, 65534);
    const r = check(path.join(theirs, "sandboxes"));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /theirs above it belongs to another user/);
  });
});
