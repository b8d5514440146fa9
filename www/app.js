// app: the labbox single-page frontend. Hash routing (#/ and #/jobs/<id>), the recent-jobs list,
// and wiring of the upload form and the job view.

import { getJson, JOB_ID_RE, ApiError } from './api.js';
import { initUpload } from './upload.js';
import { JobView } from './jobview.js';
import { loadRecent, forgetJob } from './recent.js';
import { stateLabel, formatTime } from './format.js';

const $ = (id) => document.getElementById(id);

const limitsPromise = getJson('/api/limits');
limitsPromise.catch(() => {}); /* each user handles the failure itself */

let jobView = null;
let recentGeneration = 0;

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function route() {
  const hash = window.location.hash || '#/';
  if (jobView) {
    jobView.destroy();
    jobView = null;
  }
  const m = /^#\/jobs\/([^/?#]+)\/?$/.exec(hash);
  const home = $('view-home');
  const job = $('view-job');
  const notice = $('home-notice');
  notice.hidden = true;
  if (m && JOB_ID_RE.test(m[1])) {
    home.hidden = true;
    job.hidden = false;
    $('nav-new').removeAttribute('aria-current');
    jobView = new JobView(m[1], limitsPromise);
    jobView.start();
    focusHeading('job-title');
    return;
  }
  if (m) {
    notice.textContent = 'That job link is not valid: a job id is 26 letters and digits. Check the link you were given.';
    notice.hidden = false;
  }
  job.hidden = true;
  home.hidden = false;
  $('nav-new').setAttribute('aria-current', 'page');
  document.title = 'labbox';
  renderRecent();
  focusHeading('home-title');
}

let firstRoute = true;
function focusHeading(id) {
  /* Move focus to the new view's heading for screen readers, except on the first load. */
  if (firstRoute) {
    firstRoute = false;
    return;
  }
  const h = $(id);
  if (h) h.focus({ preventScroll: false });
}

function renderRecent() {
  const gen = ++recentGeneration;
  const list = $('recent-list');
  const entries = loadRecent();
  $('recent-empty').hidden = entries.length > 0;
  const items = entries.map((e) => {
    const li = document.createElement('li');
    li.className = 'recent-item';
    li.dataset.id = e.id;
    const main = document.createElement('div');
    main.className = 'recent-main';
    const a = document.createElement('a');
    a.href = `#/jobs/${e.id}`;
    a.className = 'recent-link';
    a.textContent = e.names.length ? e.names.join(', ') : `Job ${e.id.slice(0, 8)}…`;
    const meta = document.createElement('span');
    meta.className = 'muted small';
    meta.textContent = [e.created ? formatTime(e.created) : '', `${e.id.slice(0, 8)}…`].filter(Boolean).join(' · ');
    main.append(a, meta);
    const badge = document.createElement('span');
    badge.className = 'badge badge-small';
    badge.dataset.state = 'loading';
    badge.textContent = stateLabel('loading');
    const rm = document.createElement('button');
    rm.type = 'button';
    rm.className = 'btn btn-quiet btn-icon';
    rm.setAttribute('aria-label', `Remove ${a.textContent} from this list`);
    rm.title = 'Remove from this list';
    rm.textContent = '×';
    rm.addEventListener('click', () => {
      forgetJob(e.id);
      const next = li.nextElementSibling ?? li.previousElementSibling;
      li.remove();
      $('recent-empty').hidden = list.children.length > 0;
      const target = next ? next.querySelector('button') : $('recent-refresh');
      if (target) target.focus();
    });
    li.append(main, badge, rm);
    getJson(`/api/jobs/${encodeURIComponent(e.id)}`).then((job) => {
      if (gen !== recentGeneration) return;
      badge.dataset.state = job.state;
      badge.textContent = stateLabel(job.state);
    }, (err) => {
      if (gen !== recentGeneration) return;
      if (err instanceof ApiError && err.status === 404) {
        badge.dataset.state = 'expired';
        badge.textContent = stateLabel('expired');
        li.classList.add('is-expired');
      } else {
        badge.dataset.state = 'unknown';
        badge.textContent = 'Unreachable';
      }
    });
    return li;
  });
  list.replaceChildren(...items);
}

initUpload(limitsPromise, navigate);
$('recent-refresh').addEventListener('click', renderRecent);
window.addEventListener('hashchange', route);
window.addEventListener('storage', (e) => {
  if (e.key && e.key.startsWith('labbox.recent') && !$('view-home').hidden) renderRecent();
});
route();
