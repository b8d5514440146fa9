// people: identity from the web host through nginx: two htpasswd users (and an admin) own their
// jobs, list them a page at a time, meet their quotas; the fair queue across people (also across
// a restart); identity = address from two loopback source addresses and X-Forwarded-For; the
// auth_request (single sign-on) setup of docs/operations.md against a stand-in service.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { CSV, freePort, getJSON, sleep, startStack, upload, waitFor } from "./harness.mjs";

const USERS = { alice: "alice-pw", bob: "bob-pw", carol: "carol-pw" };

async function problem(res) {
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const b = await res.json();
  assert.equal(b.type, "about:blank");
  assert.equal(b.status, res.status);
  return b;
}

function as(stack, user, p, init = {}) {
  return fetch(stack.url + p, { ...init, headers: { ...(init.headers || {}), ...stack.auth(user) } });
}

// A CSV of about n bytes.
function csvOf(n) {
  let s = "subject,score\n";
  for (let i = 0; s.length < n; i++) s += `${i},${(i * 7) % 100}\n`;
  return s.slice(0, s.lastIndexOf("\n", n - 1) + 1);
}

describe("two users and an admin", () => {
  let stack;
  before(async () => {
    stack = await startStack({ users: USERS, config: { admin_users: "carol", max_concurrent: 4, user_max_queued: 20 } });
  });
  after(async () => stack?.stop());

  test("nginx asks for a sign-in: 401 problem+json with WWW-Authenticate", async () => {
    for (const p of ["/api/jobs", "/api/limits", "/api/health"]) {
      const res = await fetch(stack.url + p);
      assert.equal(res.status, 401, p);
      assert.match(res.headers.get("www-authenticate"), /^Basic realm="labbox"/);
      assert.equal((await problem(res)).code, "unauthorized");
    }
    const wrong = await fetch(stack.url + "/api/limits", { headers: { authorization: "Basic " + Buffer.from("alice:nope").toString("base64") } });
    assert.equal(wrong.status, 401);
    const page = await fetch(stack.url + "/");
    assert.equal(page.status, 401);
    const lim = await getJSON(stack, "/api/limits", "carol");
    assert.equal(lim.body.identity, "remote_user");
    assert.equal(lim.body.user, "carol");
    assert.equal(lim.body.admin, true);
    assert.equal(lim.body.user_max_queued, 20);
    assert.equal((await getJSON(stack, "/api/limits", "alice")).body.admin, false);
  });

  test("a job is its owner's: others get 404 on every route, an admin sees and manages it", async () => {
    const a = await upload(stack, [{ name: "a.csv", data: CSV }], { mode: "ok" }, "alice");
    assert.equal(a.status, 201);
    assert.equal(a.body.owner, "alice");
    const id = a.body.id;
    await waitFor(stack, id, undefined, 60000, "alice");
    const routes = [`/api/jobs/${id}`, `/api/jobs/${id}/logs`, `/api/jobs/${id}/events`, `/api/jobs/${id}/outputs`,
      `/api/jobs/${id}/outputs.zip`, `/api/jobs/${id}/outputs/result.txt`];
    for (const p of routes) {
      const theirs = await as(stack, "bob", p);
      assert.equal(theirs.status, 404, p);
      const b = await problem(theirs);
      assert.equal(b.code, "not_found");
      // The same answer as for a job that does not exist: nothing tells it apart.
      const none = await as(stack, "bob", p.replace(id, "aaaaaaaaaaaaaaaaaaaaaaaaaa"));
      assert.deepEqual(await none.json(), b);
      assert.equal((await as(stack, "alice", p)).status, 200, p);
      assert.equal((await as(stack, "carol", p)).status, 200, p);
    }
    assert.equal((await as(stack, "bob", `/api/jobs/${id}`, { method: "HEAD" })).status, 404);
    assert.equal((await as(stack, "bob", `/api/jobs/${id}/cancel`, { method: "POST" })).status, 404);
    assert.equal((await as(stack, "bob", `/api/jobs/${id}`, { method: "DELETE" })).status, 404);
    assert.equal((await getJSON(stack, `/api/jobs/${id}`, "alice")).body.state, "succeeded");
    // An admin cancels and deletes someone else's job.
    const live = await upload(stack, [{ name: "b.csv", data: CSV }], { mode: "sleep", seconds: 30 }, "bob");
    assert.equal(live.body.owner, "bob");
    const c = await as(stack, "carol", `/api/jobs/${live.body.id}/cancel`, { method: "POST" });
    assert.equal(c.status, 202);
    assert.equal((await waitFor(stack, live.body.id, undefined, 60000, "bob")).state, "canceled");
        // 204, or 202 while the ended job's supervisor still tears its sandbox down.
    const d = await as(stack, "carol", `/api/jobs/${id}`, { method: "DELETE" });
    assert.ok(d.status === 204 || d.status === 202, `${d.status}`);
    assert.equal((await as(stack, "alice", `/api/jobs/${id}`)).status, 404);
  });

  test("the list: own jobs newest first, pages with a cursor, by state; admins list all", async () => {
    const mine = [];
    for (let i = 0; i < 7; i++) {
      const r = await upload(stack, [{ name: `p${i}.csv`, data: CSV }], { mode: "ok" }, "alice");
      assert.equal(r.status, 201);
      mine.push(r.body.id);
    }
    const bobs = (await upload(stack, [{ name: "q.csv", data: CSV }], { mode: "ok" }, "bob")).body.id;
    for (const id of mine) await waitFor(stack, id, undefined, 60000, "alice");
    await waitFor(stack, bobs, undefined, 60000, "bob");
    // Pages of 3 until next is null: every job of alice's once, newest first.
    const seen = [];
    let cursor = null, pages = 0;
    do {
      const q = `/api/jobs?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const r = await getJSON(stack, q, "alice");
      assert.equal(r.status, 200);
      assert.ok(r.body.jobs.length <= 3);
      for (const j of r.body.jobs) {
        assert.equal(j.owner, "alice");
        assert.equal(j.outputs, undefined, "a list leaves the outputs out");
        assert.ok(j.links.self.endsWith(j.id));
        seen.push(j);
      }
      cursor = r.body.next;
      pages++;
    } while (cursor);
    const ids = seen.map((j) => j.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of mine) assert.ok(ids.includes(id), id);
    assert.ok(!ids.includes(bobs));
    assert.ok(pages >= 3);
    const created = seen.map((j) => Date.parse(j.created_at));
    assert.deepEqual(created, [...created].sort((x, y) => y - x), "newest first");
    assert.equal(ids.indexOf(mine[6]), 0, "the newest job comes first");
    // By state: all of alice's are done.
    const done = await getJSON(stack, "/api/jobs?state=succeeded&limit=100", "alice");
    assert.ok(mine.every((id) => done.body.jobs.some((j) => j.id === id)));
    assert.ok(done.body.jobs.every((j) => j.state === "succeeded"));
    assert.equal((await getJSON(stack, "/api/jobs?state=queued", "alice")).body.jobs.length, 0);
    // Bob sees only his; the admin's all=1 sees both; others may not ask for all.
    const b = await getJSON(stack, "/api/jobs", "bob");
    assert.ok(b.body.jobs.some((j) => j.id === bobs) && b.body.jobs.every((j) => j.owner === "bob"));
    const all = await getJSON(stack, "/api/jobs?all=1&limit=100", "carol");
    assert.ok(all.body.jobs.some((j) => j.id === bobs) && mine.every((id) => all.body.jobs.some((j) => j.id === id)));
    assert.equal((await getJSON(stack, "/api/jobs", "carol")).body.jobs.length, 0, "an admin's own list has only theirs");
    const forbidden = await as(stack, "alice", "/api/jobs?all=1");
    assert.equal(forbidden.status, 403);
    assert.equal((await problem(forbidden)).code, "forbidden");
    for (const q of ["limit=0", "limit=101", "limit=x", "state=done", "all=yes", "cursor=abc",
      `cursor=${"1".repeat(17)}.aaaaaaaaaaaaaaaaaaaaaaaaaa`, `cursor=${encodeURIComponent("1a.AAAAAAAAAAAAAAAAAAAAAAAAAA")}`]) {
      const res = await as(stack, "alice", `/api/jobs?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal((await problem(res)).code, "bad_request");
    }
  });
});

// Wait until serve has seen n jobs succeed (its dispatcher notices an end within 200 ms; the
// bytes a job keeps count from then on).
async function seenEnded(s, n) {
  for (let i = 0; i < 200; i++) {
    const m = await (await fetch(`${s.url}/api/metrics`, { headers: s.auth(s.user) })).text();
    const got = /^labbox_jobs_finished_total\{state="succeeded",reason=""\} (\d+)$/m.exec(m);
    if (got && Number(got[1]) >= n) return;
    await sleep(25);
  }
  throw new Error(`serve did not see ${n} jobs end`);
}

describe("per-person quotas", () => {
  test("user_max_queued: 429 user_quota naming it, with Retry-After; others go on", async () => {
    const s = await startStack({ users: USERS, config: { max_concurrent: 1, user_max_queued: 2 } });
    try {
      const run = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 60 }, "alice");
      await waitFor(s, run.body.id, (j) => j.state === "running", 60000, "alice");
      for (let i = 0; i < 2; i++) assert.equal((await upload(s, [{ name: "b.csv", data: CSV }], { mode: "ok" }, "alice")).status, 201);
      const over = await upload(s, [{ name: "c.csv", data: CSV }], { mode: "ok" }, "alice");
      assert.equal(over.status, 429);
      assert.equal(over.headers.get("content-type"), "application/problem+json");
      assert.equal(over.body.code, "user_quota");
      assert.equal(over.body.quota, "user_max_queued");
      assert.match(over.body.detail, /alice has 2 jobs waiting/);
      assert.ok(Number(over.headers.get("retry-after")) > 0);
      const bob = await upload(s, [{ name: "d.csv", data: CSV }], { mode: "ok" }, "bob");
      assert.equal(bob.status, 201);
      const m = await (await fetch(`${s.url}/api/metrics`, { headers: s.auth("alice") })).text();
      assert.match(m, /^labbox_quota_jobs_total\{quota="user_max_queued",outcome="over"\} 1$/m);
      assert.match(m, /^labbox_quota_jobs_total\{quota="user_max_queued",outcome="within"\} 4$/m);
      assert.doesNotMatch(m, /alice|bob/);
    } finally {
      await s.stop();
    }
  });

  test("user_max_bytes: counted on upload, then with outputs and logs kept; deleting frees it", async () => {
    const s = await startStack({ users: USERS, config: { user_max_bytes: 5000, job_ttl: 3600 } });
    try {
      const first = await upload(s, [{ name: "a.csv", data: csvOf(4000) }], { mode: "ok" }, "alice");
      assert.equal(first.status, 201);
      // 4000 kept: 1500 more would pass 5000; refused after the body, naming the quota.
      const big = await upload(s, [{ name: "b.csv", data: csvOf(1500) }], { mode: "ok" }, "alice");
      assert.equal(big.status, 429);
      assert.equal(big.headers.get("content-type"), "application/problem+json");
      assert.equal(big.body.code, "user_quota");
      assert.equal(big.body.quota, "user_max_bytes");
      assert.match(big.body.detail, /with this upload/);
      assert.ok(Number(big.headers.get("retry-after")) > 0);
      // Bob has his own allowance.
            const bob = await upload(s, [{ name: "c.csv", data: csvOf(3500) }], { mode: "ok" }, "bob");
      assert.equal(bob.status, 201);
      // Once the job ended, its outputs, log and zip count too: now even a small upload is
      // refused before its body is read, until the first finished job expires or is deleted.
            await waitFor(s, first.body.id, undefined, 60000, "alice");
      // Both jobs: Bob's may end first, and serve must have seen Alice's end.
      await waitFor(s, bob.body.id, undefined, 60000, "bob");
      await seenEnded(s, 2);
      const small = await upload(s, [{ name: "e.csv", data: CSV }], { mode: "ok" }, "alice");
      assert.equal(small.status, 429);
      assert.equal(small.body.quota, "user_max_bytes");
      assert.doesNotMatch(small.body.detail, /with this upload/);
      const left = Number(small.headers.get("retry-after"));
      assert.ok(left > 3000 && left <= 3600, `${left}: until the finished job expires`);
            const gone = await as(s, "alice", `/api/jobs/${first.body.id}`, { method: "DELETE" });
      assert.ok(gone.status === 204 || gone.status === 202, `${gone.status}`); // 202: still tearing down
      assert.equal((await upload(s, [{ name: "f.csv", data: CSV }], { mode: "ok" }, "alice")).status, 201);
      const m = await (await fetch(`${s.url}/api/metrics`, { headers: s.auth("bob") })).text();
      assert.match(m, /^labbox_quota_jobs_total\{quota="user_max_bytes",outcome="over"\} 2$/m);
      assert.match(m, /^labbox_quota_bytes_total\{quota="user_max_bytes",outcome="over"\} [1-9]\d{3,}$/m);
    } finally {
      await s.stop();
    }
  });

  test("user_max_running: a person's next job waits while others' start", async () => {
    const s = await startStack({ users: USERS, config: { max_concurrent: 2, user_max_running: 1 } });
    try {
      const a1 = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "sleep", seconds: 60 }, "alice");
      await waitFor(s, a1.body.id, (j) => j.state === "running", 60000, "alice");
      const a2 = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "ok" }, "alice");
      assert.equal(a2.status, 201, "a job over user_max_running is accepted and waits");
      await sleep(1000);
      const still = await getJSON(s, `/api/jobs/${a2.body.id}`, "alice");
      assert.equal(still.body.state, "queued", "a free slot, but alice already runs one");
      assert.equal(still.body.queue_position, 1);
      const b1 = await upload(s, [{ name: "b.csv", data: CSV }], { mode: "ok" }, "bob");
      assert.equal((await waitFor(s, b1.body.id, undefined, 60000, "bob")).state, "succeeded");
      assert.equal((await getJSON(s, `/api/jobs/${a2.body.id}`, "alice")).body.state, "queued");
      await as(s, "alice", `/api/jobs/${a1.body.id}/cancel`, { method: "POST" });
      assert.equal((await waitFor(s, a2.body.id, undefined, 60000, "alice")).state, "succeeded");
      const m = await (await fetch(`${s.url}/api/metrics`, { headers: s.auth("bob") })).text();
      assert.match(m, /^labbox_quota_jobs_total\{quota="user_max_running",outcome="over"\} 1$/m);
      assert.match(m, /^labbox_quota_jobs_total\{quota="user_max_running",outcome="within"\} 3$/m);
    } finally {
      await s.stop();
    }
  });
});

describe("the fair queue", () => {
  test("A submits 10, then B submits 1: B's job starts in the next free slot, also after a restart", async () => {
    const s = await startStack({ users: USERS, config: { max_concurrent: 1, user_max_queued: 20 } });
    try {
      const a = [];
      a.push((await upload(s, [{ name: "a0.csv", data: CSV }], { mode: "sleep", seconds: 60 }, "alice")).body.id);
      await waitFor(s, a[0], (j) => j.state === "running", 60000, "alice");
      for (let i = 1; i < 10; i++) {
        const r = await upload(s, [{ name: `a${i}.csv`, data: CSV }], { mode: "ok" }, "alice");
        assert.equal(r.status, 201);
        assert.equal(r.body.queue_position, i);
        a.push(r.body.id);
      }
      const b = await upload(s, [{ name: "b.csv", data: CSV }], { mode: "ok" }, "bob");
      assert.equal(b.body.queue_position, 1, "bob's only job goes before alice's nine waiting");
      const positions = async () => {
        const out = {};
        for (const id of a.slice(1)) out[id] = (await getJSON(s, `/api/jobs/${id}`, "alice")).body.queue_position;
        out[b.body.id] = (await getJSON(s, `/api/jobs/${b.body.id}`, "bob")).body.queue_position;
        return out;
      };
      const before = await positions();
      assert.deepEqual(Object.values(before).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.equal(before[a[1]], 2);
      assert.equal(before[a[9]], 10);
      // A restart of serve keeps the order.
      await s.stopServe();
      await s.startServe();
      assert.deepEqual(await positions(), before);
      // The running job ends: bob's starts next, then alice's in her order.
      await as(s, "alice", `/api/jobs/${a[0]}/cancel`, { method: "POST" });
      const bj = await waitFor(s, b.body.id, undefined, 60000, "bob");
      assert.equal(bj.state, "succeeded");
      const a1 = await waitFor(s, a[1], undefined, 60000, "alice");
      assert.ok(Date.parse(a1.started_at) >= Date.parse(bj.finished_at), "alice's next started after bob's");
      const a2 = await waitFor(s, a[2], undefined, 60000, "alice");
      assert.ok(Date.parse(a2.started_at) >= Date.parse(a1.finished_at));
    } finally {
      await s.stop();
    }
  });
});

// A request from a chosen loopback source address (fetch cannot pick one).
function requestFrom(stack, localAddress, method, p, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${stack.url}${p}`, { method, localAddress, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: json ?? text });
      });
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function uploadFrom(stack, localAddress, params, headers = {}) {
  const fd = new FormData();
  fd.append("files", new Blob([CSV], { type: "text/csv" }), "data.csv");
  fd.append("params", JSON.stringify(params));
  const r = new Request("http://x/", { method: "POST", body: fd });
  const body = Buffer.from(await r.arrayBuffer());
  return requestFrom(stack, localAddress, "POST", "/api/jobs", {
    body, headers: { ...headers, "content-type": r.headers.get("content-type"), "content-length": body.length },
  });
}

describe("identity = address (the default)", () => {
  let stack;
  before(async () => {
    stack = await startStack({ config: { max_concurrent: 1, user_max_queued: 1, trusted_proxies: "127.0.0.3" } });
  });
  after(async () => stack?.stop());

  test("two loopback addresses have a quota and a turn each; X-Forwarded-For only from a trusted proxy", async () => {
    const lim = await requestFrom(stack, "127.0.0.1", "GET", "/api/limits");
    assert.equal(lim.body.identity, "address");
    assert.equal(lim.body.user, null);
    const run = await uploadFrom(stack, "127.0.0.1", { mode: "sleep", seconds: 60 });
    assert.equal(run.status, 201);
    assert.equal(run.body.owner, undefined, "an address is never shown");
    await waitFor(stack, run.body.id, (j) => j.state === "running");
    const q1 = await uploadFrom(stack, "127.0.0.1", { mode: "ok" });
    assert.equal(q1.status, 201);
    assert.equal(q1.body.queue_position, 1);
    const over = await uploadFrom(stack, "127.0.0.1", { mode: "ok" });
    assert.equal(over.status, 429);
    assert.equal(over.body.code, "user_quota");
    assert.equal(over.body.quota, "user_max_queued");
    assert.match(over.body.detail, /this address has 1 jobs waiting/);
    // A header from an untrusted peer changes nothing.
    const forged = await uploadFrom(stack, "127.0.0.1", { mode: "ok" }, { "x-forwarded-for": "198.51.100.7" });
    assert.equal(forged.status, 429);
    // Another address: its own quota, and its job goes first (round-robin across addresses).
    const other = await uploadFrom(stack, "127.0.0.2", { mode: "ok" });
    assert.equal(other.status, 201);
    assert.equal(other.body.queue_position, 1);
    assert.equal((await getJSON(stack, `/api/jobs/${q1.body.id}`)).body.queue_position, 2);
    // A trusted proxy (127.0.0.3) speaks for the clients it names.
    const viaA = await uploadFrom(stack, "127.0.0.3", { mode: "ok" }, { "x-forwarded-for": "198.51.100.7" });
    assert.equal(viaA.status, 201);
    const viaA2 = await uploadFrom(stack, "127.0.0.3", { mode: "ok" }, { "x-forwarded-for": "198.51.100.7" });
    assert.equal(viaA2.status, 429, "198.51.100.7 has its one queued job");
    const viaB = await uploadFrom(stack, "127.0.0.3", { mode: "ok" }, { "x-forwarded-for": "9.9.9.9, 198.51.100.8" });
    assert.equal(viaB.status, 201, "the nearest untrusted hop counts, not what the client wrote first");
    // Jobs stay capability URLs: anyone with the link reads them; there is no list.
    assert.equal((await requestFrom(stack, "127.0.0.2", "GET", `/api/jobs/${q1.body.id}`)).status, 200);
    const list = await requestFrom(stack, "127.0.0.1", "GET", "/api/jobs");
    assert.equal(list.status, 404);
    assert.equal(list.body.code, "not_found");
  });
});

describe("identity = remote_user without a sign-in in front", () => {
  test("labbox refuses every request with 401, and a client cannot name a user itself", async () => {
    // render-nginx without --htpasswd passes an empty REMOTE_USER, never the unchecked user of
    // a client's own Authorization header.
    const s = await startStack({ config: { identity: "remote_user" } });
    try {
      const forged = { authorization: "Basic " + Buffer.from("alice:anything").toString("base64") };
      for (const p of ["/api/limits", "/api/jobs", "/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", "/api/nothing"]) {
        for (const headers of [{}, forged, { "remote-user": "alice" }]) {
          const res = await fetch(s.url + p, { headers });
          assert.equal(res.status, 401, p);
          assert.equal((await problem(res)).code, "unauthorized");
        }
      }
      const up = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "ok" });
      assert.equal(up.status, 401);
    } finally {
      await s.stop();
    }
  });
});

describe("single sign-on through auth_request (docs/operations.md)", () => {
  test("the SSO's user owns the jobs; without a session the pages go to sign-in and the API says 401", async () => {
    // A stand-in for oauth2-proxy: a session cookie names the user in X-Auth-Request-User.
    const sessions = { "s-alice": "alice", "s-bob": "bob" };
    const port = await freePort();
    const sso = http.createServer((req, res) => {
      const m = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie || "");
      const user = req.url === "/oauth2/auth" && m ? sessions[m[1]] : undefined;
      if (user) res.writeHead(202, { "X-Auth-Request-User": user });
      else res.writeHead(req.url.startsWith("/oauth2/start") ? 200 : 401);
      res.end(req.url.startsWith("/oauth2/start") ? "sign in here" : "");
    });
    await new Promise((r) => sso.listen(port, "127.0.0.1", r));
    const serverConf = `
        auth_request /_auth;
        auth_request_set $labbox_user $upstream_http_x_auth_request_user;
        error_page 401 = @sign_in;
        location = /_auth {
            internal;
            proxy_pass http://127.0.0.1:${port}/oauth2/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }
        location /oauth2/ {
            auth_request off;
            proxy_pass http://127.0.0.1:${port};
        }
        location @sign_in {
            return 302 /oauth2/start?rd=$request_uri;
        }`;
    const s = await startStack({
      config: { identity: "remote_user" }, remoteUser: "$labbox_user", serverConf, user: "alice",
      authHeaders: (u) => (u ? { cookie: `session=s-${u}` } : {}),
    });
    try {
      const page = await fetch(`${s.url}/`, { redirect: "manual" });
      assert.equal(page.status, 302);
      assert.match(page.headers.get("location"), /\/oauth2\/start\?rd=\/$/);
      const api = await fetch(`${s.url}/api/jobs`);
      assert.equal(api.status, 401);
      assert.equal((await problem(api)).code, "unauthorized");
      assert.equal((await fetch(`${s.url}/`, { headers: s.auth("alice") })).status, 200);
      assert.equal((await getJSON(s, "/api/limits", "alice")).body.user, "alice");
      const a = await upload(s, [{ name: "a.csv", data: CSV }], { mode: "ok" }, "alice");
      assert.equal(a.status, 201);
      assert.equal(a.body.owner, "alice");
      assert.equal((await getJSON(s, `/api/jobs/${a.body.id}`, "bob")).status, 404);
      assert.deepEqual((await getJSON(s, "/api/jobs", "alice")).body.jobs.map((j) => j.id), [a.body.id]);
      assert.deepEqual((await getJSON(s, "/api/jobs", "bob")).body.jobs, []);
      await waitFor(s, a.body.id);
    } finally {
      await s.stop();
      sso.close();
    }
  });
});
