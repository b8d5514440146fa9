// openapi: checks an answer of labbox's API against docs/openapi.yaml: the operation of its
// method and path, that the status is documented for it, the content type, the headers the
// document requires, and the body against the response's schema (JSON Schema 2020-12, ajv);
// event streams event by event. The harness runs every answer the tests get through it.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import YAML from "yaml";

export const SPEC_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../docs/openapi.yaml");
const SCHEMAS_ID = "labbox-openapi-schemas";
const METHODS = ["get", "head", "post", "put", "delete", "patch", "options", "trace"];
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// The value at a local JSON pointer ("#/components/responses/X") of doc.
export function pointer(doc, ref) {
  if (!ref.startsWith("#/")) throw new Error(`openapi: only local references are used here: ${ref}`);
  let v = doc;
  for (const part of ref.slice(2).split("/")) {
    v = v?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    if (v === undefined) throw new Error(`openapi: ${ref} points nowhere`);
  }
  return v;
}

// An object of the document, its $ref followed (responses, headers, parameters).
function deref(doc, o) {
  for (let i = 0; o && o.$ref && i < 16; i++) o = pointer(doc, o.$ref);
  return o;
}

// A copy of schema s whose references to components/schemas point into the schemas ajv holds.
function rebase(s) {
  if (Array.isArray(s)) return s.map(rebase);
  if (s === null || typeof s !== "object") return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/"))
      out[k] = `${SCHEMAS_ID}#/$defs/${v.slice("#/components/schemas/".length)}`;
    else out[k] = rebase(v);
  }
  return out;
}

// newAjv: a strict 2020-12 validator that knows the formats the document uses.
export function newAjv() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
  ajv.addFormat("date-time", { type: "string", validate: (s) => ISO_MS.test(s) || !Number.isNaN(Date.parse(s)) });
  return ajv;
}

// The regular expression of a path template; the last parameter marked x-rest takes the rest of
// the path, slashes included.
function templateRegex(template, params) {
  let re = "";
  for (const part of template.split(/(\{[^}]+\})/)) {
    const m = /^\{([^}]+)\}$/.exec(part);
    if (!m) re += part.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
    else re += params.find((p) => p.in === "path" && p.name === m[1])?.["x-rest"] ? "(.+)" : "([^/]+)";
  }
  return new RegExp(`^${re}$`);
}

// Media type without parameters, lower case, and its parameters in a canonical form.
function mediaKey(t) {
  return String(t).toLowerCase().split(";").map((x) => x.trim()).filter(Boolean).join("; ");
}

function mediaMatches(key, actual) {
  const k = mediaKey(key), a = mediaKey(actual);
  if (k === a) return true;
  const [kt] = k.split("; "), [at] = a.split("; ");
  if (k === kt && kt === at) return true; // a key without parameters matches any of them
  if (kt === "*/*") return true;
  return kt.endsWith("/*") && at.startsWith(kt.slice(0, -1));
}

const isJson = (t) => /^application\/([a-z.+-]+\+)?json$/.test(mediaKey(t).split("; ")[0]);

function clip(s, n = 600) {
  s = typeof s === "string" ? s : JSON.stringify(s);
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

function ajvText(errors) {
  return (errors || []).slice(0, 8).map((e) => `${e.instancePath || "(body)"} ${e.message}${
    e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ""}`).join("; ");
}

// Server-Sent Events from text: the blocks complete so far as {event, id, data} (comments and
// retry-only blocks left out) and the rest, an incomplete block.
export function parseEvents(text) {
  const events = [];
  const blocks = text.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const b of blocks) {
    const e = {};
    const data = [];
    for (const line of b.split(/\r?\n/)) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "event" || field === "id") e[field] = value;
    }
    if (data.length) e.data = data.join("\n");
    if (e.event !== undefined || e.data !== undefined) events.push(e);
  }
  return { events, rest };
}

export class OpenApi {
  constructor(file = SPEC_PATH) {
    this.file = file;
    this.doc = YAML.parse(fs.readFileSync(file, "utf8"));
    this.ajv = newAjv();
    this.ajv.addSchema({ $id: SCHEMAS_ID, $defs: rebase(this.doc.components?.schemas || {}) });
    this.compiled = new WeakMap();
    this.routes = Object.entries(this.doc.paths || {}).map(([template, item]) => {
      const params = [...(item.parameters || []), ...METHODS.flatMap((m) => item[m]?.parameters || [])]
        .map((p) => deref(this.doc, p));
      return { template, item, re: templateRegex(template, params), vars: (template.match(/\{/g) || []).length };
    });
    // Literal paths before templated ones, as OpenAPI has it.
    this.routes.sort((a, b) => a.vars - b.vars || b.template.length - a.template.length);
  }

  // validator: the compiled validator of schema (an object of the document).
  validator(schema) {
    let v = this.compiled.get(schema);
    if (!v) {
      v = this.ajv.compile(rebase(schema));
      this.compiled.set(schema, v);
    }
    return v;
  }

  // route: the path item a path (no query) matches, trying it without one trailing slash too.
  route(p) {
    for (const cand of p.length > 1 && p.endsWith("/") ? [p, p.slice(0, -1)] : [p])
      for (const r of this.routes) if (r.re.test(cand)) return r;
    return null;
  }

  // operation: {route, op, responses, unrouted} for method and path: the operation when the
  // document has it, else the responses of x-unrouted.
  operation(method, p) {
    const route = this.route(p);
    const op = route?.item[method.toLowerCase()];
    if (op) return { route, op, responses: op.responses, name: `${method} ${route.template}` };
    return { route, op: null, responses: this.doc["x-unrouted"]?.responses || {},
      name: `${method} ${route ? route.template : p} (no such operation: x-unrouted)` };
  }

  // check: the problems of one answer (an empty list when it is as documented). headers: a
  // Headers or a plain object; body: a Buffer or string, or null when not read (streams: see
  // events()). Returns {problems, response} (response: the response object that applies).
  check({ method, url, status, headers, body }) {
    const u = new URL(url, "http://x");
    const get = (name) => (typeof headers.get === "function" ? headers.get(name) : headers[name.toLowerCase()]) ?? null;
    const { route, op, responses, name } = this.operation(method, u.pathname);
    const problems = [];
    const response = deref(this.doc, responses[String(status)] || responses[`${String(status)[0]}XX`] || responses.default);
    if (!response) {
      problems.push(`status ${status} is not documented for ${name} (documented: ${Object.keys(responses).join(", ")})`);
      return { problems, response: null, name };
    }
    if (!op && status === 405) {
      if (!route) problems.push("405 for a path that no route has (it must be 404)");
      else {
        const allow = (get("allow") || "").split(",").map((s) => s.trim()).filter(Boolean).sort();
        const want = METHODS.filter((m) => route.item[m]).map((m) => m.toUpperCase()).sort();
        if (allow.join() !== want.join())
          problems.push(`Allow is "${get("allow")}", the document's methods of ${route.template} are ${want.join(", ")}`);
      }
    }
    for (const [hname, h0] of Object.entries(response.headers || {})) {
      const h = deref(this.doc, h0);
      const v = get(hname);
      if (v === null) {
        if (h.required) problems.push(`header ${hname} is missing`);
        continue;
      }
      if (!h.schema) continue;
      const s = deref(this.doc, h.schema);
      const value = s.type === "integer" && /^-?\d+$/.test(v) ? Number(v) : v;
      const val = this.validator(h.schema);
      if (!val(value)) problems.push(`header ${hname}: "${v}" ${ajvText(val.errors)}`);
    }
    const type = get("content-type");
    const content = response.content || null;
    const empty = body === null || body === undefined || body.length === 0;
    if (!content) {
      if (!empty && method !== "HEAD") problems.push(`a body where the document has none: ${clip(String(body))}`);
      return { problems, response, name };
    }
    const key = type === null ? null : Object.keys(content).find((k) => mediaMatches(k, type));
    if (key === undefined || key === null) {
      if (!(empty && type === null))
        problems.push(`Content-Type ${type} is not one the document has for ${status} (${Object.keys(content).join(", ")})`);
      return { problems, response, name };
    }
    if (method === "HEAD" || body === null || body === undefined) return { problems, response, name, media: content[key] };
    if (empty && !isJson(key)) return { problems, response, name };
    const media = content[key];
    const text = Buffer.isBuffer(body) ? body.toString("utf8") : String(body);
    if (isJson(key) && media.schema) {
      let json;
      try { json = JSON.parse(text); } catch (e) { problems.push(`the body is not JSON (${e.message}): ${clip(text)}`); }
      if (json !== undefined) {
        const val = this.validator(media.schema);
        if (!val(json)) problems.push(`the body does not match the schema: ${ajvText(val.errors)}; body: ${clip(text)}`);
      }
    } else if (media["x-itemSchema"] && mediaKey(key).startsWith("application/x-ndjson")) {
      if (text.length && !text.endsWith("\n")) problems.push("the body does not end with a newline");
      const val = this.validator(media["x-itemSchema"]);
      for (const line of text.split("\n").filter(Boolean)) {
        let json;
        try { json = JSON.parse(line); } catch (e) { problems.push(`a line is not JSON: ${clip(line)}`); break; }
        if (!val(json)) { problems.push(`a line does not match the schema: ${ajvText(val.errors)}; line: ${clip(line)}`); break; }
      }
    }
    return { problems, response, name, media };
  }

  // events: a checker of an event stream's text (media: the response's media type object with
  // x-itemSchema): feed(chunk) returns the problems of the events completed by it.
  events(media) {
    const schema = media?.["x-itemSchema"];
    let buf = "";
    return {
      feed: (chunk) => {
        if (!schema) return [];
        const { events, rest } = parseEvents(buf + chunk);
        buf = rest;
        const problems = [];
        for (const e of events) problems.push(...this.checkEvent(schema, e));
        return problems;
      },
    };
  }

  // checkEvent: one event {event, id, data} against the item schema (a oneOf of event kinds);
  // data that is application/json is parsed and checked against its contentSchema.
  checkEvent(schema0, e) {
    const schema = deref(this.doc, schema0);
    const envelope = this.validator(schema0);
    if (!envelope(e)) return [`event ${clip(e)} does not match ${schema0.$ref || "the event schema"}: ${ajvText(envelope.errors)}`];
    const kinds = (schema.oneOf || [schema]).map((k) => deref(this.doc, k));
    const kind = kinds.find((k) => this.validator(k)(e));
    const problems = [];
    for (const [field, fs0] of Object.entries(kind?.properties || {})) {
      if (fs0.contentMediaType !== "application/json" || !fs0.contentSchema || e[field] === undefined) continue;
      let json;
      try { json = JSON.parse(e[field]); } catch { problems.push(`event ${e.event}: ${field} is not JSON: ${clip(e[field])}`); continue; }
      const val = this.validator(fs0.contentSchema);
      if (!val(json)) problems.push(`event ${e.event}: ${field} does not match: ${ajvText(val.errors)}; ${field}: ${clip(e[field])}`);
    }
    return problems;
  }
}

// The message of an answer that is not as documented.
export function explain(method, url, status, name, problems) {
  const u = new URL(url, "http://x");
  return `openapi: ${method} ${u.pathname}${u.search} answered ${status}, not as docs/openapi.yaml says ` +
    `(${name}):\n  - ${problems.join("\n  - ")}`;
}
