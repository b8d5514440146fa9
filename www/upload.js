// upload: the new-job form. File picking and drag and drop, client-side checks against
// GET /api/limits, params validation, and the XMLHttpRequest upload with a progress bar.

import { uploadJob, problemText, ApiError } from './api.js';
import { formatBytes, plural } from './format.js';
import { rememberJob } from './recent.js';

const PARAMS_MAX_BYTES = 64 * 1024;

const TYPE_NAMES = {
  'text/plain': 'text',
  'text/csv': 'CSV',
  'application/json': 'JSON',
  'text/tab-separated-values': 'TSV',
  'application/xml': 'XML',
  'text/xml': 'XML',
  'application/pdf': 'PDF',
  'image/png': 'PNG',
  'image/jpeg': 'JPEG',
  'image/gif': 'GIF',
  'image/tiff': 'TIFF',
  'application/x-hdf5': 'HDF5',
  'application/x-hdf': 'HDF',
  'application/zip': 'zip',
  'application/gzip': 'gzip',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'Excel',
  'application/octet-stream': 'binary',
};

const $ = (id) => document.getElementById(id);

/**
 * Wire up the upload form. limits: a promise of the /api/limits object (or null when unknown).
 * navigate(hash): called with the new job's route after a successful upload.
 */
export function initUpload(limitsPromise, navigate) {
  const form = $('upload-form');
  const input = $('file-input');
  const zone = $('dropzone');
  const list = $('file-list');
  const summary = $('file-summary');
  const filesError = $('files-error');
  const params = $('params-input');
  const paramsError = $('params-error');
  const progressBlock = $('upload-progress');
  const bar = $('upload-bar');
  const barLabel = $('upload-label');
  const barText = $('upload-text');
  const uploadError = $('upload-error');
  const submit = $('submit-btn');
  const abortBtn = $('abort-btn');
  const clearBtn = $('clear-btn');
  const hint = $('limits-hint');

  let files = [];
  let limits = null;
  let refused = '';
  let current = null;
  let notes = [];

  limitsPromise.then((l) => {
    limits = l;
    hint.textContent = limitsHint(l);
    if (files.length) renderFiles();
  }, () => {
    hint.textContent = 'The upload limits could not be loaded; the server will check the files.';
  });

  zone.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    addFiles(Array.from(input.files ?? []), []);
    input.value = '';
  });

  // Drag and drop anywhere on the home view lands in the drop zone.
  let depth = 0;
  const homeVisible = () => !$('view-home').hidden && !current;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types ?? []).includes('Files');
  window.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || !homeVisible()) return;
    e.preventDefault();
    depth += 1;
    zone.classList.add('is-dragover');
  });
  window.addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove('is-dragover');
  });
  window.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = homeVisible() ? 'copy' : 'none';
  });
  window.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove('is-dragover');
    if (!homeVisible()) return;
    const dropped = [];
    const folders = [];
    const items = Array.from(e.dataTransfer.items ?? []);
    if (items.length) {
      for (const it of items) {
        if (it.kind !== 'file') continue;
        const entry = typeof it.webkitGetAsEntry === 'function' ? it.webkitGetAsEntry() : null;
        const f = it.getAsFile();
        if (entry && entry.isDirectory) folders.push(entry.name);
        else if (f) dropped.push(f);
      }
    } else {
      dropped.push(...Array.from(e.dataTransfer.files ?? []));
    }
    addFiles(dropped, folders);
    zone.focus();
  });

  list.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-index]');
    if (!btn) return;
    const i = Number(btn.dataset.index);
    const name = files[i] ? files[i].name : '';
    files.splice(i, 1);
    if (name === refused) refused = '';
    notes = [];
    renderFiles();
    const next = list.querySelector(`button[data-index="${Math.min(i, files.length - 1)}"]`);
    (next ?? zone).focus();
  });

  params.addEventListener('input', () => {
    if (!paramsError.hidden) checkParams();
  });
  params.addEventListener('blur', () => checkParams());

  clearBtn.addEventListener('click', () => {
    files = [];
    notes = [];
    refused = '';
    params.value = '';
    showError(paramsError, '');
    params.removeAttribute('aria-invalid');
    uploadError.hidden = true;
    renderFiles();
    zone.focus();
  });

  abortBtn.addEventListener('click', () => {
    if (current) current.abort();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (current) return;
    uploadError.hidden = true;
    const fileProblems = checkFiles(true);
    const paramsText = checkParams();
    if (fileProblems.length) {
      zone.focus();
      return;
    }
    if (paramsText === null) {
      params.focus();
      return;
    }
    await send(paramsText);
  });

  function addFiles(incoming, folders) {
    notes = [];
    refused = '';
    uploadError.hidden = true;
    for (const name of folders) notes.push(`${name} is a folder; choose the files inside it instead.`);
    for (const f of incoming) {
      const at = files.findIndex((g) => g.name === f.name);
      if (at >= 0) {
        files[at] = f;
        notes.push(`${f.name} was chosen twice; the newer one is kept.`);
      } else {
        files.push(f);
      }
    }
    renderFiles();
  }

  /** Client-side checks; returns the problems (also shown). */
  function checkFiles(forSubmit) {
    const problems = [...notes.filter((n) => n.includes('is a folder'))];
    if (forSubmit && files.length === 0) problems.push('Choose at least one file.');
    if (limits) {
      const maxFile = num(limits.max_file_bytes);
      const maxJob = num(limits.max_job_bytes);
      const maxFiles = num(limits.max_files);
      for (const f of files) {
        if (maxFile && f.size > maxFile) {
          problems.push(`${f.name} is too large: ${formatBytes(f.size)}, and each file may be at most ${formatBytes(maxFile)}.`);
        }
      }
      if (maxFiles && files.length > maxFiles) {
        problems.push(`Too many files: ${files.length} chosen, at most ${maxFiles} per job.`);
      }
      const total = files.reduce((a, f) => a + f.size, 0);
      if (maxJob && total > maxJob) {
        problems.push(`The files are too large together: ${formatBytes(total)}, and a job may hold at most ${formatBytes(maxJob)}.`);
      }
    }
    for (const f of files) {
      if (f.name.startsWith('.')) problems.push(`${f.name}: file names may not start with a dot; rename it first.`);
    }
    const other = notes.filter((n) => !n.includes('is a folder'));
    showError(filesError, [...problems, ...other].join(' '));
    zone.setAttribute('aria-invalid', problems.length ? 'true' : 'false');
    return problems;
  }

  /** The params text to send ('' for none), or null when it is not a JSON object. */
  function checkParams() {
    const text = params.value.trim();
    let msg = '';
    if (text) {
      let v;
      try {
        v = JSON.parse(text);
      } catch (err) {
        msg = `Parameters are not valid JSON: ${err && err.message ? err.message : 'parse error'}.`;
      }
      if (!msg && (v === null || typeof v !== 'object' || Array.isArray(v))) {
        msg = 'Parameters must be a JSON object, like {"key": "value"}.';
      }
      if (!msg && new TextEncoder().encode(text).length > PARAMS_MAX_BYTES) {
        msg = `Parameters are too long: at most ${formatBytes(PARAMS_MAX_BYTES)}.`;
      }
    }
    showError(paramsError, msg);
    if (msg) params.setAttribute('aria-invalid', 'true');
    else params.removeAttribute('aria-invalid');
    return msg ? null : text;
  }

  function renderFiles() {
    const maxFile = limits ? num(limits.max_file_bytes) : 0;
    const items = files.map((f, i) => {
      const li = document.createElement('li');
      li.className = 'file-item';
      const tooBig = maxFile && f.size > maxFile;
      if (tooBig || f.name === refused) li.classList.add('is-bad');
      const name = document.createElement('span');
      name.className = 'file-name';
      name.textContent = f.name;
      const meta = document.createElement('span');
      meta.className = 'file-meta tabular';
      meta.textContent = formatBytes(f.size) + (tooBig ? ' · too large' : '') + (f.name === refused ? ' · refused' : '');
      const rm = document.createElement('button');
      rm.type = 'button';
      rm.className = 'btn btn-quiet btn-icon';
      rm.dataset.index = String(i);
      rm.setAttribute('aria-label', `Remove ${f.name}`);
      rm.textContent = '×';
      li.append(name, meta, rm);
      return li;
    });
    list.replaceChildren(...items);
    if (files.length) {
      const total = files.reduce((a, f) => a + f.size, 0);
      summary.textContent = `${plural(files.length, 'file')}, ${formatBytes(total)} in total.`;
      summary.hidden = false;
    } else {
      summary.hidden = true;
    }
    checkFiles(false);
  }

  async function send(paramsText) {
    const sending = files.slice();
    const total = sending.reduce((a, f) => a + f.size, 0);
    setBusy(true);
    progressBlock.hidden = false;
    bar.max = 100;
    bar.value = 0;
    barLabel.textContent = 'Uploading';
    barText.textContent = `0 B of ${formatBytes(total)} (0%)`;
    let lastPct = -1;
    current = uploadJob(sending, paramsText, {
      onProgress(loaded, all) {
        const whole = all || total;
        const pct = whole > 0 ? Math.min(100, Math.floor((loaded / whole) * 100)) : 0;
        bar.value = pct;
        if (pct !== lastPct) {
          lastPct = pct;
          barText.textContent = `${formatBytes(Math.min(loaded, whole))} of ${formatBytes(whole)} (${pct}%)`;
        }
      },
      onSent() {
        bar.value = 100;
        barLabel.textContent = 'Uploaded; the server is checking the files';
        barText.textContent = `${formatBytes(total)} (100%)`;
      },
    });
    try {
      const job = await current.promise;
      rememberJob(job.id, sending.map((f) => f.name), job.created_at);
      files = [];
      notes = [];
      refused = '';
      params.value = '';
      renderFiles();
      progressBlock.hidden = true;
      navigate(`#/jobs/${job.id}`);
    } catch (err) {
      progressBlock.hidden = true;
      if (err instanceof ApiError && err.code === 'aborted') {
        showError(uploadError, 'The upload was stopped. Nothing was sent to the agent.');
      } else {
        refused = err instanceof ApiError ? err.file : '';
        showError(uploadError, problemText(err));
        renderFiles();
      }
      uploadError.focus();
    } finally {
      current = null;
      setBusy(false);
    }
  }

  function setBusy(busy) {
    form.setAttribute('aria-busy', busy ? 'true' : 'false');
    for (const el of [zone, params, submit, clearBtn]) el.disabled = busy;
    for (const b of list.querySelectorAll('button')) b.disabled = busy;
    abortBtn.hidden = !busy;
    submit.textContent = busy ? 'Uploading…' : 'Start job';
  }
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = !text;
  if (el.id === 'upload-error') el.tabIndex = -1;
}

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

function limitsHint(l) {
  const parts = [];
  if (num(l.max_files)) parts.push(`up to ${plural(l.max_files, 'file')}`);
  if (num(l.max_file_bytes)) parts.push(`${formatBytes(l.max_file_bytes)} each`);
  if (num(l.max_job_bytes)) parts.push(`${formatBytes(l.max_job_bytes)} in total`);
  let s = parts.length ? `${capitalize(parts.join(', '))}.` : '';
  if (Array.isArray(l.allowed_types) && l.allowed_types.length) {
    const names = [...new Set(l.allowed_types.map((t) => TYPE_NAMES[t] ?? t))];
    s += ` Accepted: ${names.join(', ')}.`;
  }
  return s.trim();
}

function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}
