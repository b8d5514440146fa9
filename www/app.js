// app: the labbox single-page frontend. Hash routing (#/ and #/jobs/<id>), the jobs list (the
// server's "My jobs" when it knows who is signed in, else the jobs of this browser), and wiring
// of the upload form and the job view.

import { getJson, JOB_ID_RE, ApiError, problemText } from './api.js';
import { initUpload } from './upload.js';
import { JobView } from './jobview.js';
import { loadRecent, forgetJob } from './recent.js';
import { fetchMyJobs, jobRow, myJobItem } from './myjobs.js';
import { stateLabel } from './format.js';

const $ = (id) => document.getElementById(id);

const limitsPromise = getJson('/api/limits');
limitsPromise.catch(() => {}); /* each user handles the failure itself */
const agentPromise = getJson('/api/agent');
agentPromise.catch(() => {});

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
    jobView = new JobView(m[1], limitsPromise, agentPromise, navigate);
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

/** The jobs list: the server's when it names the signed-in user, else this browser's. */
function renderRecent() {
  const gen = ++recentGeneration;
  limitsPromise.then((limits) => {
    if (gen !== recentGeneration) return;
    if (limits && limits.identity === 'remote_user') renderMyJobs(gen, limits, null);
    else renderLocal(gen);
  }, () => {
    if (gen === recentGeneration) renderLocal(gen);
  });
}

/** "My jobs" from the server: a page, or the next one appended (cursor). */
function renderMyJobs(gen, limits, cursor) {
  const list = $('recent-list');
  const more = $('recent-more');
  const all = limits.admin === true && $('recent-all').checked;
  $('recent-title').textContent = all ? 'Everyone\'s jobs' : 'My jobs';
  $('recent-who').textContent = typeof limits.user === 'string' ? `Signed in as ${limits.user}` : '';
  $('recent-all-wrap').hidden = limits.admin !== true;
  $('recent-empty').textContent = all ? 'No jobs yet.' : 'No jobs yet. Jobs you start appear here, wherever you sign in.';
  $('footer-note').textContent = 'labbox runs each job in its own sandbox. Your jobs are yours: others see them only if they administer this server.';
  more.disabled = true;
  fetchMyJobs(cursor, all).then((page) => {
    if (gen !== recentGeneration) return;
    $('recent-error').hidden = true;
    const items = page.jobs.map((j) => myJobItem(j, all));
    if (cursor) list.append(...items);
    else list.replaceChildren(...items);
    $('recent-empty').hidden = list.children.length > 0;
    more.hidden = !page.next;
    more.disabled = false;
    more.onclick = () => renderMyJobs(gen, limits, page.next);
  }, (err) => {
    if (gen !== recentGeneration) return;
    $('recent-error').textContent = `The list of your jobs could not be loaded: ${problemText(err)}`;
    $('recent-error').hidden = false;
    more.disabled = false;
  });
}

/** The jobs started in this browser (localStorage), each with its state from the server. */
function renderLocal(gen) {
  const list = $('recent-list');
  const entries = loadRecent();
  $('recent-empty').hidden = entries.length > 0;
  const items = entries.map((e) => {
    const { li, link: a, badge } = jobRow({ id: e.id, names: e.names, created: e.created, state: 'loading' });
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
    li.append(rm);
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

initUpload(limitsPromise, agentPromise, navigate);
$('recent-refresh').addEventListener('click', renderRecent);
$('recent-all').addEventListener('change', renderRecent);
window.addEventListener('hashchange', route);
window.addEventListener('storage', (e) => {
  if (e.key && e.key.startsWith('labbox.recent') && !$('view-home').hidden) renderRecent();
});
route();
