// recent: the jobs started in this browser, kept in localStorage as [{id, names, created}].

import { JOB_ID_RE } from './api.js';

const KEY = 'labbox.recent.v1';
const MAX = 30;

/** The remembered jobs, newest first. Never throws (storage may be disabled or corrupt). */
export function loadRecent() {
  let raw = null;
  try {
    raw = window.localStorage.getItem(KEY);
  } catch {
    return [];
  }
  if (!raw) return [];
  try {
    const list = JSON.parse(raw);
    if (!Array.isArray(list)) return [];
    return list.filter((e) => e && typeof e.id === 'string' && JOB_ID_RE.test(e.id)).map((e) => ({
      id: e.id,
      names: Array.isArray(e.names) ? e.names.filter((n) => typeof n === 'string').slice(0, 50) : [],
      created: typeof e.created === 'string' ? e.created : '',
    }));
  } catch {
    return [];
  }
}

function save(list) {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX)));
  } catch {
    /* storage full or disabled: the list is a convenience only */
  }
}

/** Remember a job (or refresh its entry), newest first. */
export function rememberJob(id, names, created) {
  if (!JOB_ID_RE.test(id)) return;
  const list = loadRecent().filter((e) => e.id !== id);
  list.unshift({ id, names: names.slice(0, 50), created: created || new Date().toISOString() });
  save(list);
}

/** Remember a job opened by its link unless it is already known (keeps its original names). */
export function rememberIfNew(job) {
  if (!job || !JOB_ID_RE.test(job.id ?? '')) return;
  if (loadRecent().some((e) => e.id === job.id)) return;
  const names = Array.isArray(job.inputs) ? job.inputs.map((i) => i && i.name).filter((n) => typeof n === 'string') : [];
  const list = loadRecent();
  list.push({ id: job.id, names, created: job.created_at || '' });
  list.sort((a, b) => (Date.parse(b.created) || 0) - (Date.parse(a.created) || 0));
  save(list);
}

/** Forget one job. */
export function forgetJob(id) {
  save(loadRecent().filter((e) => e.id !== id));
}
