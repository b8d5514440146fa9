// logview: a virtualized log console. Keeps every line in memory, renders only the visible rows,
// batches appends into one DOM update per animation frame, and follows the tail until the user
// scrolls up (following resumes when they scroll back to the bottom).

const STREAM_CODE = { stdout: 0, stderr: 1, system: 2 };
const STREAM_TAG = ['', 'err', 'sys'];
const STREAM_CLASS = ['log-row s-stdout', 'log-row s-stderr', 'log-row s-system'];
const OVERSCAN = 20;

export class LogView {
  /**
   * host: an empty element to render into.
   * onFollowChange(following, unseen): called when following stops or resumes, and when the
   * number of lines that arrived while not following changes (at most once per frame).
   * onCount(n): called once per frame when the number of lines changed.
   */
  constructor(host, { onFollowChange, onCount } = {}) {
    this.host = host;
    this.onFollowChange = onFollowChange ?? (() => {});
    this.onCount = onCount ?? (() => {});
    this.shownCount = -1;
    this.shownUnseen = 0;
    this.lines = [];
    this.streams = [];
    this.times = [];
    this.following = true;
    this.unseen = 0;
    this.frame = 0;
    this.renderedKey = '';
    this.pool = [];
    this.lh = 20;
    this.digits = 0;

    this.scroller = document.createElement('div');
    this.scroller.className = 'log';
    this.scroller.tabIndex = 0;
    this.scroller.setAttribute('role', 'region');
    this.scroller.setAttribute('aria-label', 'Job log');
    this.sizer = document.createElement('div');
    this.sizer.className = 'log-sizer';
    this.win = document.createElement('div');
    this.win.className = 'log-window';
    this.sizer.appendChild(this.win);
    this.scroller.appendChild(this.sizer);
    this.empty = document.createElement('div');
    this.empty.className = 'log-empty';
    this.empty.textContent = 'Waiting for output…';
    host.replaceChildren(this.scroller, this.empty);

    this.measure();
    this.onScroll = () => {
      const atBottom = this.scroller.scrollTop + this.scroller.clientHeight >= this.scroller.scrollHeight - this.lh;
      if (atBottom !== this.following) {
        this.following = atBottom;
        if (atBottom) this.unseen = 0;
        this.shownUnseen = this.unseen;
        this.onFollowChange(this.following, this.unseen);
      }
      this.schedule();
    };
    this.scroller.addEventListener('scroll', this.onScroll, { passive: true });
    this.onResize = () => {
      this.measure();
      this.renderedKey = '';
      this.schedule();
    };
    this.resizeObserver = typeof ResizeObserver === 'function' ? new ResizeObserver(this.onResize) : null;
    if (this.resizeObserver) this.resizeObserver.observe(this.scroller);
  }

  /** Measure one row's height in CSS pixels (fonts and user settings decide it). */
  measure() {
    const probe = document.createElement('div');
    probe.className = 'log-row s-stdout';
    probe.textContent = 'M';
    this.win.appendChild(probe);
    const h = probe.getBoundingClientRect().height;
    probe.remove();
    if (h > 0) this.lh = h;
  }

  /** Number of lines held. */
  get count() {
    return this.lines.length;
  }

  /** Append log records ({t, stream, line}); the DOM catches up on the next animation frame. */
  append(records) {
    for (const r of records) {
      const line = typeof r.line === 'string' ? r.line : String(r.line ?? '');
      this.lines.push(line.replace(/\r$/, ''));
      this.streams.push(STREAM_CODE[r.stream] ?? 0);
      this.times.push(typeof r.t === 'number' ? r.t : 0);
    }
    if (!this.following) this.unseen += records.length;
    this.schedule();
  }

  /** Text shown when there are no lines. */
  setEmptyText(text) {
    this.empty.textContent = text;
  }

  /** Scroll to the newest line and follow new ones. */
  follow() {
    this.following = true;
    this.unseen = 0;
    this.shownUnseen = 0;
    this.onFollowChange(true, 0);
    this.schedule();
  }

  /** The whole log as text; stderr and system lines carry a prefix. */
  text() {
    const out = new Array(this.lines.length);
    for (let i = 0; i < this.lines.length; i += 1) {
      const s = this.streams[i];
      out[i] = s === 0 ? this.lines[i] : `[${STREAM_TAG[s]}] ${this.lines[i]}`;
    }
    return out.join('\n') + (out.length ? '\n' : '');
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.update();
    });
  }

  update() {
    const n = this.lines.length;
    if (n !== this.shownCount) {
      this.shownCount = n;
      this.onCount(n);
    }
    if (!this.following && this.unseen !== this.shownUnseen) {
      this.shownUnseen = this.unseen;
      this.onFollowChange(false, this.unseen);
    }
    this.empty.hidden = n > 0;
    this.scroller.dataset.lines = String(n);
    const digits = String(Math.max(n, 1)).length;
    if (digits !== this.digits) {
      this.digits = digits;
      this.scroller.style.setProperty('--ln-ch', String(Math.max(digits, 3)));
    }
    const height = n * this.lh;
    if (this.sizer.style.height !== `${height}px`) this.sizer.style.height = `${height}px`;
    if (this.following) {
      const max = this.scroller.scrollHeight - this.scroller.clientHeight;
      if (max > 0 && Math.abs(this.scroller.scrollTop - max) > 1) this.scroller.scrollTop = max;
    }
    this.render();
  }

  render() {
    const n = this.lines.length;
    const top = this.scroller.scrollTop;
    const view = this.scroller.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / this.lh) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + view) / this.lh) + OVERSCAN);
    const key = `${first}:${last}`;
    if (key === this.renderedKey) return;
    this.renderedKey = key;
    this.win.style.transform = `translateY(${first * this.lh}px)`;
    const count = last - first;
    while (this.pool.length < count) this.pool.push(makeRow());
    const kids = this.win.children;
    for (let k = 0; k < count; k += 1) {
      const i = first + k;
      const row = this.pool[k];
      const s = this.streams[i];
      if (row.className !== STREAM_CLASS[s]) row.className = STREAM_CLASS[s];
      row.firstChild.textContent = String(i + 1);
      row.children[1].textContent = STREAM_TAG[s];
      row.lastChild.textContent = this.lines[i];
      if (kids[k] !== row) this.win.insertBefore(row, kids[k] ?? null);
    }
    while (this.win.children.length > count) this.win.lastChild.remove();
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.scroller.removeEventListener('scroll', this.onScroll);
    if (this.resizeObserver) this.resizeObserver.disconnect();
    this.host.replaceChildren();
  }
}

function makeRow() {
  const row = document.createElement('div');
  const ln = document.createElement('span');
  ln.className = 'ln';
  ln.setAttribute('aria-hidden', 'true');
  const tag = document.createElement('span');
  tag.className = 'tag';
  const tx = document.createElement('span');
  tx.className = 'tx';
  row.append(ln, tag, tx);
  return row;
}
