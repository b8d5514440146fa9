// upload: the new-job form. Files and folders picked or dropped (a folder's files keep their
// paths, shown as a tree), client-side checks against GET /api/limits, the agent's parameters
// as a form from its schema (GET /api/agent) or a JSON box, and the XMLHttpRequest upload with
// a progress bar.

import { uploadJob, problemText, ApiError } from './api.js';
import { formatBytes, plural } from './format.js';
import { ParamsForm, usableSchema } from './params.js';
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
 * Wire up the upload form. limits: a promise of the /api/limits object (or null when unknown);
 * agent: a promise of GET /api/agent. navigate(hash): called with the new job's route after a
 * successful upload.
 */
export function initUpload(limitsPromise, agentPromise, navigate) {
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
  const folderInput = $('folder-input');
  const paramsJson = $('params-json-field');
  const paramsFormHost = $('params-form');

  /* Every file with the path it is uploaded under: its name, or folder/.../name. */
  let files = [];
  let paramsForm = null;
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

  agentPromise.then((agent) => {
    if (!agent || !usableSchema(agent.params_schema)) return;
    paramsForm = new ParamsForm(paramsFormHost, agent.params_schema);
    paramsFormHost.hidden = false;
    paramsFormHost.setAttribute('aria-labelledby', 'params-form-title');
    paramsJson.hidden = true;
    $('params-form-title').hidden = false;
  }, () => {});

  zone.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    addFiles(Array.from(input.files ?? []).map((f) => ({ file: f, path: f.name })), []);
    input.value = '';
  });
  $('folder-btn').addEventListener('click', () => folderInput.click());
  folderInput.addEventListener('change', () => {
    const picked = Array.from(folderInput.files ?? []).map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
    addFiles(...withoutHidden(picked));
    folderInput.value = '';
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
  window.addEventListener('drop', async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove('is-dragover');
    if (!homeVisible()) return;
    /* Entries must be taken before the event ends; folders are read after. */
    const items = Array.from(e.dataTransfer.items ?? []).filter((it) => it.kind === 'file');
    const entries = items.map((it) => (typeof it.webkitGetAsEntry === 'function' ? it.webkitGetAsEntry() : null));
    const plain = items.map((it) => it.getAsFile());
    if (!items.length) plain.push(...Array.from(e.dataTransfer.files ?? []));
    const dropped = [];
    const problems = [];
    for (let i = 0; i < Math.max(entries.length, plain.length); i += 1) {
      const entry = entries[i];
      if (entry && entry.isDirectory) {
        try {
          dropped.push(...await readFolder(entry, entry.name));
        } catch {
          problems.push(`The folder ${entry.name} could not be read.`);
        }
      } else if (plain[i]) {
        dropped.push({ file: plain[i], path: plain[i].name });
      }
    }
    const [kept, notes0] = withoutHidden(dropped);
    addFiles(kept, [...notes0, ...problems]);
    zone.focus();
  });

  list.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-path]');
    if (!btn) return;
    const p = btn.dataset.path;
    const folder = btn.dataset.folder === '1';
    files = files.filter((f) => (folder ? !f.path.startsWith(`${p}/`) : f.path !== p));
    if (refused === p || (folder && refused.startsWith(`${p}/`))) refused = '';
    notes = [];
    renderFiles();
    const next = list.querySelector('button[data-path]');
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
    if (paramsForm) paramsForm.clear();
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
    const paramsText = paramsForm ? formParams() : checkParams();
    if (fileProblems.length) {
      zone.focus();
      return;
    }
    if (paramsText === null) {
      if (!paramsForm) params.focus();
      return;
    }
    await send(paramsText);
  });

  /** Add {file, path} entries (a path chosen again replaces the older file); notes are shown. */
  function addFiles(incoming, extraNotes) {
    notes = [...extraNotes];
    refused = '';
    uploadError.hidden = true;
    for (const f of incoming) {
      const at = files.findIndex((g) => g.path === f.path);
      if (at >= 0) {
        files[at] = f;
        notes.push(`${f.path} was chosen twice; the newer one is kept.`);
      } else {
        files.push(f);
      }
    }
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    renderFiles();
  }

  /** The form's params as text ('' for none), or null when a field is wrong (shown there). */
  function formParams() {
    const { params: values, errors } = paramsForm.collect();
    if (errors.length) return null;
    return Object.keys(values).length ? JSON.stringify(values) : '';
  }

  /** Client-side checks; returns the problems (also shown). */
  function checkFiles(forSubmit) {
    const problems = [];
    if (forSubmit && files.length === 0) problems.push('Choose at least one file.');
    if (limits) {
      const maxFile = num(limits.max_file_bytes);
      const maxJob = num(limits.max_job_bytes);
      const maxFiles = num(limits.max_files);
      for (const { file: f, path } of files) {
        if (maxFile && f.size > maxFile) {
          problems.push(`${path} is too large: ${formatBytes(f.size)}, and each file may be at most ${formatBytes(maxFile)}.`);
        }
      }
      if (maxFiles && files.length > maxFiles) {
        problems.push(`Too many files: ${files.length} chosen, at most ${maxFiles} per job.`);
      }
      const total = files.reduce((a, f) => a + f.file.size, 0);
      if (maxJob && total > maxJob) {
        problems.push(`The files are too large together: ${formatBytes(total)}, and a job may hold at most ${formatBytes(maxJob)}.`);
      }
    }
    for (const { path } of files) {
      if (path.startsWith('.')) problems.push(`${path}: file names may not start with a dot; rename it first.`);
    }
    showError(filesError, [...problems, ...notes].join(' '));
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
    list.replaceChildren(...treeRows(files, maxFile, refused));
    if (files.length) {
      const total = files.reduce((a, f) => a + f.file.size, 0);
      const folders = new Set(files.filter((f) => f.path.includes('/')).map((f) => f.path.split('/')[0])).size;
      summary.textContent = `${plural(files.length, 'file')}${folders ? ` (${plural(folders, 'folder')})` : ''}, ${formatBytes(total)} in total.`;
      summary.hidden = false;
    } else {
      summary.hidden = true;
    }
    checkFiles(false);
  }

  async function send(paramsText) {
    const sending = files.slice();
    const total = sending.reduce((a, f) => a + f.file.size, 0);
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
      rememberJob(job.id, sending.map((f) => f.path), job.created_at);
      files = [];
      notes = [];
      refused = '';
      params.value = '';
      if (paramsForm) paramsForm.clear();
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
        if (paramsForm && err instanceof ApiError && err.code === 'bad_params') paramsForm.markError(err.param, err.detail);
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
    for (const el of [zone, params, submit, clearBtn, $('folder-btn')]) el.disabled = busy;
    if (paramsForm) paramsForm.setDisabled(busy);
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

/** The files of a dropped folder (a FileSystemDirectoryEntry), each with its path from it. */
async function readFolder(dir, prefix) {
  const out = [];
  const reader = dir.createReader();
  for (;;) {
    /* readEntries answers in batches (100 in Chromium) until it answers none. */
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const entry of batch) {
      const path = `${prefix}/${entry.name}`;
      if (entry.isDirectory) {
        out.push(...await readFolder(entry, path));
      } else if (entry.isFile) {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        out.push({ file, path });
      }
    }
  }
  return out;
}

/** [kept, notes]: a folder's hidden files (.DS_Store, .git/...) are left out, and said so. */
function withoutHidden(entries) {
  const kept = entries.filter((f) => !f.path.split('/').some((part) => part.startsWith('.')));
  const left = entries.length - kept.length;
  const notes = left ? [`${plural(left, 'hidden file')} (names starting with a dot) ${left === 1 ? 'was' : 'were'} left out.`] : [];
  return [kept, notes];
}

/** The chosen files as list rows: a row per folder, its files indented below it. */
function treeRows(files, maxFile, refused) {
  const rows = [];
  let open = [];
  for (const { file: f, path } of files) {
    const parts = path.split('/');
    const dirs = parts.slice(0, -1);
    let same = 0;
    while (same < open.length && same < dirs.length && open[same] === dirs[same]) same += 1;
    for (let d = same; d < dirs.length; d += 1) {
      const folder = dirs.slice(0, d + 1).join('/');
      const inside = files.filter((x) => x.path.startsWith(`${folder}/`));
      const size = inside.reduce((a, x) => a + x.file.size, 0);
      rows.push(row(`${dirs[d]}/`, `${plural(inside.length, 'file')}, ${formatBytes(size)}`, folder, true, d, false));
    }
    open = dirs;
    const tooBig = maxFile && f.size > maxFile;
    const meta = formatBytes(f.size) + (tooBig ? ' · too large' : '') + (path === refused ? ' · refused' : '');
    rows.push(row(parts[parts.length - 1], meta, path, false, dirs.length, tooBig || path === refused));
  }
  return rows;
}

function row(label, meta, path, folder, level, bad) {
  const li = document.createElement('li');
  li.className = folder ? 'file-item is-folder' : 'file-item';
  if (bad) li.classList.add('is-bad');
  li.style.setProperty('--level', String(level));
  li.dataset.path = path;
  const name = document.createElement('span');
  name.className = 'file-name';
  name.textContent = label;
  name.title = path;
  const m = document.createElement('span');
  m.className = 'file-meta tabular';
  m.textContent = meta;
  const rm = document.createElement('button');
  rm.type = 'button';
  rm.className = 'btn btn-quiet btn-icon';
  rm.dataset.path = path;
  rm.dataset.folder = folder ? '1' : '0';
  rm.setAttribute('aria-label', folder ? `Remove the folder ${path} and its files` : `Remove ${path}`);
  rm.textContent = '×';
  li.append(name, m, rm);
  return li;
}
