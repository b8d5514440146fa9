// jobview: one job's page. State badge, queue position, ticking elapsed time, the live log over
// Server-Sent Events (resumed by byte offset, never duplicating a line), cancel, the results (the
// agent's main report in a sandboxed frame, pictures, table previews), the inputs with a re-run,
// and when the job expires.

import { getJson, postJson, getLogRecords, problemText, safeUrl, encodePath, ApiError } from './api.js';
import {
  formatBytes, formatClock, formatDuration, formatTime, stateLabel, isTerminal, reasonText, plural,
} from './format.js';
import { LogView } from './logview.js';
import { ParamsForm, usableSchema } from './params.js';
import { previewTable } from './preview.js';
import { rememberIfNew, rememberJob } from './recent.js';

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/svg+xml', 'image/gif', 'image/webp']);
const TABLE_TYPES = new Set(['text/csv', 'text/tab-separated-values']);
const SUMMARY_MAX_BYTES = 4 * 1024 * 1024; /* summary.json is read for its "report" below this */
const MAX_BACKOFF_MS = 5000;

const $ = (id) => document.getElementById(id);

export class JobView {
  /**
   * id: a valid job id; limitsPromise: resolves to /api/limits (used for wording only);
   * agentPromise: GET /api/agent (the re-run's form); navigate(hash) opens another route.
   */
  constructor(id, limitsPromise, agentPromise, navigate) {
    this.id = id;
    this.base = `/api/jobs/${encodeURIComponent(id)}`;
    this.job = null;
    this.limits = null;
    this.offset = 0;
    this.es = null;
    this.ended = false;
    this.destroyed = false;
    this.retryTimer = 0;
    this.tickTimer = 0;
    this.backoff = 500;
    this.resultsShown = false;
    this.outputsTries = 0;
    this.abort = new AbortController();
    limitsPromise.then((l) => {
      this.limits = l;
      if (this.job) this.renderReason();
    }, () => {});

    this.onCancel = () => this.cancel();
    this.onFollowClick = () => {
      this.log.follow();
      this.log.scroller.focus();
    };
    this.onCopy = () => this.copyLog();
    this.agentPromise = agentPromise;
    this.navigate = navigate;
    this.inputsShown = false;
    this.onRerun = (e) => {
      e.preventDefault();
      this.rerun();
    };
    this.onRerunOpen = () => {
      if ($('rerun').open) this.prepareRerun();
    };
  }

  start() {
    this.resetDom();
    this.log = new LogView($('log-host'), {
      onFollowChange: (following, unseen) => {
        const btn = $('log-follow');
        btn.hidden = following;
        btn.textContent = unseen > 0 ? `Jump to latest (${unseen.toLocaleString()} new)` : 'Jump to latest';
      },
      onCount: (n) => {
        $('log-count').textContent = n ? `· ${plural(n, 'line').replace(/^\d+/, n.toLocaleString())}` : '';
      },
    });
    $('cancel-btn').addEventListener('click', this.onCancel);
    $('log-follow').addEventListener('click', this.onFollowClick);
    $('log-copy').addEventListener('click', this.onCopy);
    $('rerun-form').addEventListener('submit', this.onRerun);
    $('rerun').addEventListener('toggle', this.onRerunOpen);
    $('log-download').href = `${this.base}/logs`;
    $('log-download').setAttribute('download', `labbox-${this.id}.log`);
    this.tickTimer = window.setInterval(() => this.renderElapsed(), 500);
    this.load();
  }

  destroy() {
    this.destroyed = true;
    this.abort.abort();
    if (this.es) this.es.close();
    this.es = null;
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.tickTimer);
    $('cancel-btn').removeEventListener('click', this.onCancel);
    $('log-follow').removeEventListener('click', this.onFollowClick);
    $('log-copy').removeEventListener('click', this.onCopy);
    $('rerun-form').removeEventListener('submit', this.onRerun);
    $('rerun').removeEventListener('toggle', this.onRerunOpen);
    if (this.log) this.log.destroy();
    $('gallery').replaceChildren();
    $('outputs-list').replaceChildren();
    $('report-frame').removeAttribute('src');
  }

  resetDom() {
    $('job-id-text').textContent = this.id;
    setBadge('loading');
    $('job-files').textContent = '';
    $('job-error').hidden = true;
    $('job-elapsed').textContent = '–';
    $('job-queue-wrap').hidden = true;
    $('job-started').textContent = '–';
    $('job-backend').textContent = '–';
    $('job-expires-wrap').hidden = true;
    $('job-reason').hidden = true;
    $('cancel-btn').hidden = true;
    $('cancel-btn').disabled = false;
    $('job-actions').hidden = false;
    $('log-status').textContent = '';
    $('conn-status').textContent = '';
    $('log-count').textContent = '';
    $('log-follow').hidden = true;
    $('results').hidden = true;
    $('usage').replaceChildren();
    $('outputs-list').replaceChildren();
    $('gallery').replaceChildren();
    $('outputs-empty').hidden = true;
    $('report').hidden = true;
    $('report-frame').removeAttribute('src');
    $('inputs-card').hidden = true;
    $('inputs-list').replaceChildren();
    $('rerun').open = false;
    $('rerun-error').hidden = true;
    this.rerunForm = null;
    document.title = `Job ${this.id.slice(0, 8)}… · labbox`;
  }

  async load() {
    try {
      const job = await getJson(this.base, { signal: this.abort.signal });
      if (this.destroyed) return;
      rememberIfNew(job);
      this.apply(job);
    } catch (err) {
      if (this.destroyed || (err && err.name === 'AbortError')) return;
      if (err instanceof ApiError && err.status === 404) {
        this.gone();
        return;
      }
      this.showError(`The job could not be loaded. ${problemText(err)}`);
    }
    this.connect();
  }

  /** Open the event stream from the current offset. */
  connect() {
    if (this.destroyed || this.ended) return;
    const url = this.offset > 0 ? `${this.base}/events?offset=${this.offset}` : `${this.base}/events`;
    const es = new EventSource(url);
    this.es = es;
    let opened = false;
    es.addEventListener('open', () => {
      opened = true;
      this.backoff = 500;
      $('conn-status').textContent = '';
    });
    es.addEventListener('state', (e) => {
      const job = parseJson(e.data);
      if (job && typeof job.state === 'string') this.apply(job);
    });
    es.addEventListener('log', (e) => {
      const rec = parseJson(e.data);
      if (!rec) return;
      const off = Number.parseInt(e.lastEventId, 10);
      if (Number.isFinite(off)) {
        if (off <= this.offset) return; /* already shown: never duplicate a line */
        /* The id is the offset after this record: it must start where the last one ended. A
         * stream that skipped records is dropped; the log is read from our offset instead. */
        if (off - utf8Length(e.data) - 1 !== this.offset) {
          es.close();
          if (this.es === es) this.es = null;
          this.catchUp();
          return;
        }
        this.offset = off;
      }
      this.log.append([rec]);
    });
    es.addEventListener('end', () => {
      es.close();
      if (this.es === es) this.es = null;
      this.completeLog();
    });
    es.addEventListener('error', () => {
      if (this.destroyed || this.ended) return;
      if (es.readyState === EventSource.CONNECTING) {
        /* The browser reconnects by itself and sends Last-Event-ID. */
        $('conn-status').textContent = 'Connection lost; reconnecting…';
        return;
      }
      /* Closed for good (an HTTP error or a wrong content type): catch up, then retry. */
      es.close();
      if (this.es === es) this.es = null;
      $('conn-status').textContent = opened ? 'Connection lost; reconnecting…' : 'Waiting for the live log…';
      this.retryTimer = window.setTimeout(() => this.catchUp(), this.backoff);
      this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    });
  }

  /** Without a live stream: read the job and the log from the offset, then reconnect. */
  async catchUp() {
    if (this.destroyed || this.ended) return;
    try {
      const job = await getJson(this.base, { signal: this.abort.signal });
      if (this.destroyed) return;
      this.apply(job);
      const { records, next } = await getLogRecords(this.id, this.offset, { signal: this.abort.signal });
      if (this.destroyed) return;
      if (next > this.offset) {
        this.offset = next;
        this.log.append(records);
      }
      if (isTerminal(job.state) && records.length === 0) {
        /* Finished and nothing more to read: the log is complete. */
        this.finish();
        return;
      }
    } catch (err) {
      if (this.destroyed || (err && err.name === 'AbortError')) return;
      if (err instanceof ApiError && err.status === 404) {
        this.gone();
        return;
      }
    }
    this.connect();
  }

  /**
   * After the stream's end: read the log from our offset until nothing is left, then finish.
   * The page never shows a log as complete when the stream missed records at its end.
   */
  async completeLog() {
    if (this.destroyed || this.ended) return;
    try {
      for (;;) {
        const { records, next } = await getLogRecords(this.id, this.offset, { signal: this.abort.signal });
        if (this.destroyed) return;
        if (next <= this.offset) break;
        this.offset = next;
        this.log.append(records);
      }
    } catch (err) {
      if (this.destroyed || (err && err.name === 'AbortError')) return;
      if (err instanceof ApiError && err.status === 404) {
        this.gone();
        return;
      }
      $('conn-status').textContent = 'Checking that the log is complete…';
      this.retryTimer = window.setTimeout(() => this.completeLog(), this.backoff);
      this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
      return;
    }
    this.finish();
  }

  finish() {
    if (this.ended) return;
    this.ended = true;
    $('conn-status').textContent = '';
    this.log.setEmptyText('The agent printed nothing.');
    if (this.job && isTerminal(this.job.state)) {
      this.showResults();
    } else {
      /* The stream ended before we saw the terminal state: read it once. */
      getJson(this.base).then((job) => this.apply(job), () => {});
    }
  }

  gone() {
    this.ended = true;
    if (this.es) this.es.close();
    this.es = null;
    setBadge('expired');
    $('cancel-btn').hidden = true;
    $('conn-status').textContent = '';
    this.log.setEmptyText('No log: the job is gone.');
    this.showError('This job does not exist or has expired. Finished jobs are deleted after a while; start a new one from the home page.');
  }

  apply(job) {
    if (this.destroyed || !job || job.id !== this.id) return;
    const prev = this.job ? this.job.state : '';
    this.job = job;
    setBadge(job.state);
    document.title = `${stateLabel(job.state)} · job ${this.id.slice(0, 8)}… · labbox`;
    const inputs = Array.isArray(job.inputs) ? job.inputs : [];
    $('job-files').textContent = inputs.length
      ? inputs.map((f) => `${f.name} (${formatBytes(f.size)})`).join(', ')
      : '';
    $('job-started').textContent = job.started_at ? formatTime(job.started_at) : (job.state === 'queued' ? 'not yet' : '–');
    $('job-backend').textContent = job.backend || '–';
    $('job-expires-wrap').hidden = !job.expires_at;
    if (job.expires_at) $('job-expires').textContent = expiryText(job.expires_at);
    this.showInputs(job);
    const queued = job.state === 'queued';
    $('job-queue-wrap').hidden = !queued;
    if (queued) {
      const p = job.queue_position;
      $('job-queue').textContent = typeof p === 'number' ? (p <= 1 ? 'Next in line' : `Position ${p}`) : 'Waiting';
    }
    const terminal = isTerminal(job.state);
    const cancel = $('cancel-btn');
    cancel.hidden = terminal || !job.links || !job.links.cancel;
    $('job-actions').hidden = terminal;
    if (terminal) cancel.disabled = true;
    else if (prev !== job.state && !this.canceling) cancel.disabled = false;
    this.renderReason();
    this.renderElapsed();
    if (terminal) {
      window.clearInterval(this.tickTimer);
      this.tickTimer = 0;
      this.showResults();
    }
  }

  renderReason() {
    const job = this.job;
    const el = $('job-reason');
    if (!job || !isTerminal(job.state)) {
      el.hidden = true;
      return;
    }
    el.textContent = reasonText(job, this.limits);
    el.dataset.state = job.state;
    el.hidden = !el.textContent;
  }

  renderElapsed() {
    const job = this.job;
    if (!job) return;
    const el = $('job-elapsed');
    const created = Date.parse(job.created_at ?? '');
    const started = Date.parse(job.started_at ?? '');
    const finished = Date.parse(job.finished_at ?? '');
    if (isTerminal(job.state)) {
      let ms = job.usage && typeof job.usage.wall_ms === 'number' ? job.usage.wall_ms : NaN;
      if (!Number.isFinite(ms) && Number.isFinite(started) && Number.isFinite(finished)) ms = finished - started;
      el.textContent = Number.isFinite(ms) ? formatDuration(Math.max(0, ms)) : '–';
      return;
    }
    if (Number.isFinite(started)) {
      el.textContent = formatClock(Math.max(0, Date.now() - started));
    } else if (Number.isFinite(created)) {
      el.textContent = `${formatClock(Math.max(0, Date.now() - created))} waiting`;
    }
  }

  async cancel() {
    if (!this.job || !this.job.links || !this.job.links.cancel) return;
    const url = safeUrl(this.job.links.cancel);
    if (!url) return;
    const btn = $('cancel-btn');
    btn.disabled = true;
    this.canceling = true;
    btn.textContent = 'Canceling…';
    try {
      const job = await postJson(url);
      if (job && job.id) this.apply(job);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'already_finished') {
        getJson(this.base).then((job) => this.apply(job), () => {});
      } else {
        this.showError(`The job could not be canceled. ${problemText(err)}`);
        btn.disabled = false;
      }
    } finally {
      this.canceling = false;
      btn.textContent = 'Cancel job';
    }
  }

  async showResults() {
    if (this.resultsShown || this.destroyed || !this.job) return;
    this.resultsShown = true;
    const job = this.job;
    $('results').hidden = false;
    renderUsage(job);
    const archive = $('archive-link');
    const archiveUrl = safeUrl(job.links && job.links.archive);
    archive.hidden = true;
    if (archiveUrl) {
      archive.href = archiveUrl;
      archive.setAttribute('download', `labbox-${this.id}-outputs.zip`);
    }
    const outputsUrl = safeUrl(job.links && job.links.outputs) ?? `${this.base}/outputs`;
    let outputs = [];
    try {
      const body = await getJson(outputsUrl, { signal: this.abort.signal });
      outputs = Array.isArray(body && body.outputs) ? body.outputs : [];
    } catch (err) {
      if (this.destroyed || (err && err.name === 'AbortError')) return;
      if (err instanceof ApiError && err.code === 'not_ready' && this.outputsTries < 5) {
        this.outputsTries += 1;
        this.resultsShown = false;
        this.retryTimer = window.setTimeout(() => this.showResults(), 1000);
        return;
      }
      if (!(err instanceof ApiError && (err.status === 409 || err.status === 404))) {
        this.showError(`The outputs could not be listed. ${problemText(err)}`);
      }
    }
    if (this.destroyed) return;
    renderOutputs(outputs, this.abort.signal);
    archive.hidden = !archiveUrl || outputs.length === 0;
    this.showReport(outputs);
  }

  /**
   * The agent's main report, first: the output summary.json names in "report", else an
   * index.html, shown in a frame that runs no script of it (the server adds its own sandbox).
   */
  async showReport(outputs) {
    const byPath = new Map(outputs.filter((o) => o && typeof o.path === 'string').map((o) => [o.path, o]));
    let name = '';
    const summary = byPath.get('summary.json');
    const summaryUrl = summary && summary.size <= SUMMARY_MAX_BYTES ? safeUrl(summary.url) : null;
    if (summaryUrl) {
      try {
        const s = await getJson(summaryUrl, { signal: this.abort.signal });
        if (s && typeof s.report === 'string') name = s.report;
      } catch {
        /* not JSON, or gone: no report named */
      }
    }
    if (this.destroyed) return;
    if (!byPath.get(name)?.view_url) name = byPath.get('index.html')?.view_url ? 'index.html' : '';
    const o = byPath.get(name);
    const url = o ? safeUrl(o.view_url) : null;
    if (!url) return;
    const frame = $('report-frame');
    /* Chromium's PDF viewer refuses a sandboxed frame; nosniff keeps such a file a PDF. */
    if (o.type === 'application/pdf') frame.removeAttribute('sandbox');
    else frame.setAttribute('sandbox', '');
    frame.src = url;
    frame.title = `The agent's report, ${o.path}`;
    $('report-title').textContent = `Report: ${o.path}`;
    $('report-open').href = url;
    $('report').hidden = false;
  }

  /** The inputs, with downloads (each file, all as a zip) and the re-run panel. */
  showInputs(job) {
    if (this.inputsShown || !Array.isArray(job.inputs)) return;
    this.inputsShown = true;
    const items = job.inputs.filter((i) => i && typeof i.name === 'string').map((i) => {
      const li = fileRow(i.name, i.size, i.type);
      const a = document.createElement('a');
      a.className = 'btn btn-small';
      a.href = `${this.base}/inputs/${encodePath(i.name)}`;
      a.setAttribute('download', baseName(i.name));
      a.textContent = 'Download';
      a.setAttribute('aria-label', `Download the input ${i.name}`);
      li.append(a);
      return li;
    });
    $('inputs-list').replaceChildren(...items);
    $('inputs-archive').href = `${this.base}/inputs.zip`;
    $('inputs-archive').setAttribute('download', `labbox-${this.id}-inputs.zip`);
    $('inputs-card').hidden = false;
  }

  /** The re-run panel opened: the agent's form (or a JSON box) with this job's params. */
  async prepareRerun() {
    if (this.rerunReady) return;
    this.rerunReady = true;
    let agent = null;
    let old = null;
    try {
      agent = await this.agentPromise;
    } catch {
      agent = null;
    }
    try {
      old = await getJson(`${this.base}/inputs/params.json`, { signal: this.abort.signal });
    } catch (err) {
      if (this.destroyed || (err && err.name === 'AbortError')) return;
      old = null; /* the job had none */
    }
    if (this.destroyed) return;
    if (agent && usableSchema(agent.params_schema)) {
      this.rerunForm = new ParamsForm($('rerun-params-form'), agent.params_schema);
      this.rerunForm.fill(old);
      $('rerun-params-form').hidden = false;
      $('rerun-json-field').hidden = true;
    } else {
      $('rerun-input').value = old ? JSON.stringify(old, null, 2) : '';
    }
  }

  /** Start the re-run: POST rerun with the params, then open the new job. */
  async rerun() {
    const error = $('rerun-error');
    error.hidden = true;
    let text = '{}';
    if (this.rerunForm) {
      const { params, errors } = this.rerunForm.collect();
      if (errors.length) return;
      text = JSON.stringify(params);
    } else if ($('rerun-input').value.trim()) {
      text = $('rerun-input').value.trim();
      let v = null;
      try {
        v = JSON.parse(text);
      } catch {
        v = null;
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) {
        error.textContent = 'Parameters must be a JSON object, like {"key": "value"}.';
        error.hidden = false;
        return;
      }
    }
    const btn = $('rerun-submit');
    btn.disabled = true;
    try {
      const job = await postJson(`${this.base}/rerun`, text);
      if (!job || typeof job.id !== 'string') throw new ApiError(500, null, 'The server answered without a job.');
      rememberJob(job.id, (job.inputs ?? []).map((i) => i.name), job.created_at);
      this.navigate(`#/jobs/${job.id}`);
    } catch (err) {
      if (this.rerunForm && err instanceof ApiError && err.code === 'bad_params') this.rerunForm.markError(err.param, err.detail);
      error.textContent = `The job could not be run again. ${problemText(err)}`;
      error.hidden = false;
    } finally {
      btn.disabled = false;
    }
  }

  async copyLog() {
    const text = this.log.text();
    const status = $('log-status');
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = `Copied ${plural(this.log.count, 'line')}.`;
    } catch {
      const ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.className = 'visually-hidden';
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      ta.remove();
      status.textContent = ok ? `Copied ${plural(this.log.count, 'line')}.` : 'Copying is not allowed here; use Download instead.';
    }
    window.setTimeout(() => {
      if (status.textContent.startsWith('Cop')) status.textContent = '';
    }, 4000);
  }

  showError(text) {
    const el = $('job-error');
    el.textContent = text;
    el.hidden = false;
  }
}

function setBadge(state) {
  const b = $('job-badge');
  b.dataset.state = state;
  b.textContent = stateLabel(state);
}

/** Bytes of s in UTF-8 (an event's data is its log record, byte for byte). */
function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

function parseJson(s) {
  try {
    const v = JSON.parse(s);
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

function fact(term, value) {
  const div = document.createElement('div');
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.className = 'tabular';
  dd.textContent = value;
  div.append(dt, dd);
  return div;
}

function renderUsage(job) {
  const u = job.usage && typeof job.usage === 'object' ? job.usage : {};
  const facts = [];
  if (typeof u.wall_ms === 'number') facts.push(fact('Wall time', formatDuration(u.wall_ms)));
  if (typeof u.cpu_ms === 'number') facts.push(fact('CPU time', formatDuration(u.cpu_ms)));
  if (typeof u.max_rss_kb === 'number') facts.push(fact('Peak memory', formatBytes(u.max_rss_kb * 1024)));
  if (typeof job.exit_code === 'number') facts.push(fact('Exit code', String(job.exit_code)));
  if (job.finished_at) facts.push(fact('Finished', formatTime(job.finished_at)));
  $('usage').replaceChildren(...facts);
}

function baseName(path) {
  const s = String(path);
  const i = s.lastIndexOf('/');
  return i >= 0 ? s.slice(i + 1) : s;
}

/** When a finished job expires: "Dec 3 14:02 (in 23 h)". */
function expiryText(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '–';
  const left = t - Date.now();
  const when = left <= 0 ? 'any moment now' : left < 3600000 ? `in ${Math.max(1, Math.round(left / 60000))} min`
    : left < 172800000 ? `in ${Math.round(left / 3600000)} h` : `in ${Math.round(left / 86400000)} days`;
  return `${formatTime(iso)} (${when})`;
}

/** A row of a file list: its path, its size and type; buttons go after. */
function fileRow(path, size, type) {
  const li = document.createElement('li');
  li.className = 'output-item';
  const name = document.createElement('span');
  name.className = 'output-name';
  name.textContent = path;
  const meta = document.createElement('span');
  meta.className = 'output-meta tabular';
  meta.textContent = [formatBytes(size), typeof type === 'string' ? type : ''].filter(Boolean).join(' · ');
  li.append(name, meta);
  return li;
}

function renderOutputs(outputs, signal) {
  const list = $('outputs-list');
  const gallery = $('gallery');
  const items = [];
  const figures = [];
  for (const o of outputs) {
    if (!o || typeof o.path !== 'string') continue;
    const url = safeUrl(o.url);
    const viewUrl = safeUrl(o.view_url);
    const li = fileRow(o.path, o.size, o.type);
    if (url && TABLE_TYPES.has(o.type)) li.append(previewButton(li, url, o, signal));
    if (viewUrl) {
      /* The server shows it sandboxed, as text, or as an image: safe in a tab of its own. */
      const v = document.createElement('a');
      v.className = 'btn btn-small btn-quiet';
      v.href = viewUrl;
      v.target = '_blank';
      v.rel = 'noopener noreferrer';
      v.textContent = 'View';
      v.setAttribute('aria-label', `View ${o.path} in a new tab`);
      li.append(v);
    }
    if (url) {
      const a = document.createElement('a');
      a.className = 'btn btn-small';
      a.href = url;
      a.setAttribute('download', baseName(o.path));
      a.textContent = 'Download';
      a.setAttribute('aria-label', `Download ${o.path}`);
      li.append(a);
      if (IMAGE_TYPES.has(o.type)) {
        /* An <img> never runs an SVG's scripts; outputs are never put into the page as HTML. */
        const fig = document.createElement('figure');
        fig.className = 'figure';
        const img = document.createElement('img');
        img.src = url;
        img.alt = `Output image ${o.path}`;
        img.decoding = 'async';
        img.referrerPolicy = 'no-referrer';
        const cap = document.createElement('figcaption');
        cap.textContent = o.path;
        fig.append(img, cap);
        figures.push(fig);
      }
    }
    items.push(li);
  }
  list.replaceChildren(...items);
  gallery.replaceChildren(...figures);
  $('outputs-empty').hidden = items.length > 0;
}

/** A button that shows (and hides) the first rows of a CSV or TSV output under its row. */
function previewButton(li, url, o, signal) {
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'btn btn-small btn-quiet';
  btn.textContent = 'Preview';
  btn.setAttribute('aria-expanded', 'false');
  btn.setAttribute('aria-label', `Preview the first rows of ${o.path}`);
  let box = null;
  btn.addEventListener('click', async () => {
    if (box) {
      box.hidden = !box.hidden;
      btn.setAttribute('aria-expanded', String(!box.hidden));
      return;
    }
    box = document.createElement('div');
    box.className = 'preview';
    box.textContent = 'Loading…';
    li.append(box);
    btn.setAttribute('aria-expanded', 'true');
    try {
      box.replaceChildren(await previewTable(url, o.type, signal));
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      box.textContent = 'The preview could not be loaded; download the file instead.';
    }
  });
  return btn;
}
