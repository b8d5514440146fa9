// myjobs: the rows of the jobs list, and "My jobs" from the server (GET /api/jobs) when it knows
// who is signed in (identity = remote_user): newest first, a page at a time; an admin may show
// everyone's. Without sign-in the page keeps its list in this browser instead (recent.js).

import { getJson, JOB_ID_RE } from './api.js';
import { stateLabel, formatTime } from './format.js';

const PAGE = 20;

/** One page of the signed-in user's jobs (all: everyone's, for admins): {jobs, next}. */
export async function fetchMyJobs(cursor, all) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) q.set('cursor', cursor);
  if (all) q.set('all', '1');
  const page = await getJson(`/api/jobs?${q}`);
  const jobs = Array.isArray(page?.jobs) ? page.jobs.filter((j) => j && JOB_ID_RE.test(j.id ?? '')) : [];
  return { jobs, next: typeof page?.next === 'string' && page.next ? page.next : null };
}

/**
 * A row of the jobs list: the job's file names as its link, when it was created (and, when
 * given, by whom), its short id, and a state badge. Returns {li, link, badge}.
 */
export function jobRow({ id, names, created, owner, state }) {
  const li = document.createElement('li');
  li.className = 'recent-item';
  li.dataset.id = id;
  const main = document.createElement('div');
  main.className = 'recent-main';
  const link = document.createElement('a');
  link.href = `#/jobs/${id}`;
  link.className = 'recent-link';
  link.textContent = names.length ? names.join(', ') : `Job ${id.slice(0, 8)}…`;
  const meta = document.createElement('span');
  meta.className = 'muted small';
  meta.textContent = [created ? formatTime(created) : '', owner || '', `${id.slice(0, 8)}…`].filter(Boolean).join(' · ');
  main.append(link, meta);
  const badge = document.createElement('span');
  badge.className = 'badge badge-small';
  badge.dataset.state = state;
  badge.textContent = stateLabel(state);
  li.append(main, badge);
  return { li, link, badge };
}

/** The row of a job object from the server's list (its owner shown when showOwner). */
export function myJobItem(job, showOwner) {
  const names = Array.isArray(job.inputs) ? job.inputs.map((i) => i && i.name).filter((n) => typeof n === 'string') : [];
  return jobRow({
    id: job.id,
    names,
    created: job.created_at,
    owner: showOwner && typeof job.owner === 'string' ? job.owner : '',
    state: typeof job.state === 'string' ? job.state : 'unknown',
  }).li;
}
