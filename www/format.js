// format: pure helpers that turn numbers, states and reason codes into words.

/** Bytes as a short human string: 1023 B, 4.0 KiB, 5.0 MiB. */
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '–';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const digits = v >= 100 ? 0 : 1;
  return `${v.toFixed(digits)} ${units[i]}`;
}

/** Milliseconds as a duration: 850 ms, 12.3 s, 4 min 05 s, 1 h 02 min. */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const total = Math.floor(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
  return `${m} min ${String(sec).padStart(2, '0')} s`;
}

/** A ticking clock: 0:07, 12:45, 1:02:03. */
export function formatClock(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) ms = 0;
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  if (h > 0) return `${h}:${String(m).padStart(2, '0')}:${ss}`;
  return `${m}:${ss}`;
}

/** A timestamp (ISO string) as local date and time, or '–'. */
export function formatTime(iso) {
  const t = Date.parse(iso ?? '');
  if (Number.isNaN(t)) return '–';
  const d = new Date(t);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (sameDay) return time;
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`;
}

const STATE_WORDS = {
  queued: 'Queued',
  staging: 'Preparing',
  running: 'Running',
  collecting: 'Collecting outputs',
  succeeded: 'Succeeded',
  failed: 'Failed',
  timed_out: 'Timed out',
  canceled: 'Canceled',
  expired: 'Expired',
  loading: 'Loading',
  unknown: 'Unknown',
};

/** The label of a state badge. */
export function stateLabel(state) {
  return STATE_WORDS[state] ?? String(state ?? 'Unknown');
}

const TERMINAL = new Set(['succeeded', 'failed', 'timed_out', 'canceled']);

/** True when a job in this state will not change any more. */
export function isTerminal(state) {
  return TERMINAL.has(state);
}

const SIGNALS = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
  9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ',
};

/** The name of a signal number, e.g. 9 -> "9 (SIGKILL)". */
export function signalName(sig) {
  if (typeof sig === 'string' && sig) return sig;
  if (typeof sig !== 'number') return 'a signal';
  return SIGNALS[sig] ? `${sig} (${SIGNALS[sig]})` : String(sig);
}

/**
 * The reason a job ended, in plain words, or '' when it succeeded.
 * limits (optional) supplies wall_timeout_s for the timeout wording.
 */
export function reasonText(job, limits) {
  if (!job) return '';
  const detail = typeof job.detail === 'string' && job.detail.trim() ? job.detail.trim() : '';
  const withDetail = (s) => (detail ? `${s} (${detail})` : s);
  switch (job.reason) {
    case null:
    case undefined:
      if (job.state === 'succeeded') return 'The agent finished successfully.';
      if (job.state === 'timed_out') return 'The agent ran out of time.';
      if (job.state === 'canceled') return 'The job was canceled.';
      if (job.state === 'failed') return withDetail('The job failed.');
      return '';
    case 'exit_nonzero':
      return typeof job.exit_code === 'number'
        ? `The agent exited with code ${job.exit_code}.`
        : withDetail('The agent exited with an error code.');
    case 'signal':
      return `The agent was stopped by signal ${signalName(job.signal)}.`;
    case 'timeout': {
      const lim = limits && typeof limits.wall_timeout_s === 'number' ? ` (the limit is ${formatDuration(limits.wall_timeout_s * 1000)})` : '';
      return `The agent ran out of time${lim}.`;
    }
    case 'oom':
      return 'The agent ran out of memory.';
    case 'output_limit':
      return 'The agent wrote more output than allowed; the outputs were not all kept.';
    case 'log_limit':
      return 'The agent printed more log than allowed and was stopped.';
    case 'sandbox_error':
      return `The sandbox failed: ${detail || 'no detail given'}.`;
    case 'interrupted':
      return withDetail('The job was interrupted: the server lost track of it, for example during a restart.');
    case 'canceled':
      return 'The job was canceled.';
    default:
      return withDetail(`The job ended: ${job.reason}.`);
  }
}

/** Pluralize: plural(2, 'file') -> "2 files". */
export function plural(n, word, many) {
  return `${n} ${n === 1 ? word : (many ?? `${word}s`)}`;
}
