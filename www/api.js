// api: small wrappers around the labbox HTTP API (docs/api.md) and its problem+json errors.

import { formatDuration } from './format.js';

/** A job id: 26 characters of lower-case RFC 4648 base32. */
export const JOB_ID_RE = /^[a-z2-7]{26}$/;

/** An error carrying the server's problem+json fields (title, detail, code, file, status). */
export class ApiError extends Error {
  constructor(status, problem, fallback) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(typeof p.detail === 'string' && p.detail ? p.detail : (p.title || fallback || `HTTP ${status}`));
    this.name = 'ApiError';
    this.status = status;
    this.code = typeof p.code === 'string' ? p.code : '';
    this.title = typeof p.title === 'string' ? p.title : '';
    this.detail = typeof p.detail === 'string' ? p.detail : '';
    this.file = typeof p.file === 'string' ? p.file : '';
    this.param = typeof p.param === 'string' ? p.param : '';
    this.fallback = fallback || '';
    this.retryAfter = 0;
  }
}

/** Parse a response body as a problem object when it is one (or any JSON object), else null. */
export function parseProblem(text) {
  if (typeof text !== 'string' || !text) return null;
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * A problem as one sentence for people: names the file when the server named one.
 * e.g. "data.bin was refused: Unsupported file type. data.bin is application/x-executable."
 */
export function problemText(err) {
  if (!(err instanceof ApiError)) {
    return err && err.message ? err.message : 'Something went wrong.';
  }
  if (!err.title && !err.detail && err.fallback) return err.fallback;
  const title = err.title || statusWords(err.status);
  const detail = err.detail && err.detail !== err.title ? err.detail : '';
  let s = '';
  if (err.file) {
    s = `${err.file} was refused: ${title}`;
  } else if (err.param) {
    s = `The parameter ${err.param} was refused: ${title}`;
  } else {
    s = title;
  }
  if (detail) s += `. ${detail}`;
  if ((err.code === 'queue_full' || err.code === 'user_quota') && err.retryAfter > 0) {
    s += `. Try again in ${formatDuration(err.retryAfter * 1000)}`;
  }
  s = s.trim();
  if (!/[.!?]$/.test(s)) s += '.';
  return s;
}

function statusWords(status) {
  switch (status) {
    case 0: return 'The server could not be reached';
    case 400: return 'The request was not accepted';
    case 404: return 'Not found';
    case 409: return 'Not possible in the current state';
    case 413: return 'Too large';
    case 415: return 'Unsupported file type';
    case 429: return 'The queue is full';
    case 502:
    case 504: return 'The service is not answering';
    case 503: return 'The service is unavailable';
    default: return `The server answered with status ${status}`;
  }
}

async function errorFrom(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {
    text = '';
  }
  const err = new ApiError(res.status, parseProblem(text));
  const ra = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  if (Number.isFinite(ra) && ra > 0) err.retryAfter = ra;
  return err;
}

/** GET a JSON document; throws ApiError on a non-2xx answer or a network failure. */
export async function getJson(path, opts = {}) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store', signal: opts.signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null, 'The server could not be reached.');
  }
  if (!res.ok) throw await errorFrom(res);
  return res.json();
}

/** POST (a JSON body when given as text) and parse the JSON answer (if any). */
export async function postJson(path, bodyText) {
  let res;
  const headers = { Accept: 'application/json' };
  if (bodyText) headers['Content-Type'] = 'application/json';
  try {
    res = await fetch(path, { method: 'POST', headers, body: bodyText || undefined });
  } catch {
    throw new ApiError(0, null, 'The server could not be reached.');
  }
  if (!res.ok) throw await errorFrom(res);
  const text = await res.text();
  return parseProblem(text);
}

/** DELETE a resource; resolves on 2xx or 404 (already gone). */
export async function del(path) {
  let res;
  try {
    res = await fetch(path, { method: 'DELETE' });
  } catch {
    throw new ApiError(0, null, 'The server could not be reached.');
  }
  if (!res.ok && res.status !== 404) throw await errorFrom(res);
}

/**
 * Fetch log records from a byte offset as ndjson.
 * Resolves to {records: [{t, stream, line}], next: <Log-Offset>}.
 */
export async function getLogRecords(jobId, offset, opts = {}) {
  const url = `/api/jobs/${encodeURIComponent(jobId)}/logs?format=ndjson&offset=${offset}`;
  let res;
  try {
    res = await fetch(url, { cache: 'no-store', signal: opts.signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null, 'The server could not be reached.');
  }
  if (!res.ok) throw await errorFrom(res);
  const text = await res.text();
  const records = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const rec = parseProblem(line);
    if (rec) records.push(rec);
  }
  const hdr = Number.parseInt(res.headers.get('Log-Offset') ?? '', 10);
  const next = Number.isFinite(hdr) && hdr >= offset ? hdr : offset + new TextEncoder().encode(text).length;
  return { records, next };
}

/**
 * Only same-origin http(s) URLs from the server are used as links and image sources;
 * anything else (a javascript: URL, another host) yields null.
 */
export function safeUrl(u) {
  if (typeof u !== 'string' || !u) return null;
  let url;
  try {
    url = new URL(u, window.location.href);
  } catch {
    return null;
  }
  if (url.origin !== window.location.origin) return null;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (!url.pathname.startsWith('/api/')) return null;
  return url.pathname + url.search;
}

/** A path of the API with each of its components percent-encoded ("run1/a b.csv"). */
export function encodePath(p) {
  return String(p).split('/').map(encodeURIComponent).join('/');
}

/**
 * Upload files ({file, path}: a folder's files go under their relative paths) and optional params
 * text with XMLHttpRequest so the upload can report progress.
 * onProgress(loaded, total) is called as bytes go out; onSent() once the body is fully sent.
 * Returns {promise, abort}; the promise resolves to the created job object or rejects with ApiError
 * (status 0 for a network failure, code 'aborted' when abort() was called).
 */
export function uploadJob(files, paramsText, { onProgress, onSent } = {}) {
  const xhr = new XMLHttpRequest();
  const form = new FormData();
  for (const f of files) form.append('files', f.file, f.path);
  if (paramsText) form.append('params', paramsText);

  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', '/api/jobs');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (e) => {
      if (onProgress) onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    });
    xhr.upload.addEventListener('load', () => {
      if (onSent) onSent();
    });
    xhr.addEventListener('load', () => {
      const body = parseProblem(xhr.responseText);
      if (xhr.status === 201 || (xhr.status >= 200 && xhr.status < 300)) {
        if (body && typeof body.id === 'string') resolve(body);
        else reject(new ApiError(xhr.status, null, 'The server answered without a job.'));
        return;
      }
      const err = new ApiError(xhr.status, body);
      const ra = Number.parseInt(xhr.getResponseHeader('Retry-After') ?? '', 10);
      if (Number.isFinite(ra) && ra > 0) err.retryAfter = ra;
      reject(err);
    });
    xhr.addEventListener('error', () => {
      reject(new ApiError(0, null, 'The upload failed: the server could not be reached or closed the connection.'));
    });
    xhr.addEventListener('abort', () => {
      const err = new ApiError(0, null, 'The upload was stopped.');
      err.code = 'aborted';
      reject(err);
    });
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
