// logview: a virtualized log console. Keeps every line in memory, renders only the visible rows,
// batches appends into one DOM update per animation frame, and follows the tail until the user
// scrolls up (following resumes when they scroll back to the bottom).
//
// Long lines wrap, like a terminal, at any character (CSS break-spaces + line-break: anywhere),
// so a line of w monospace cells takes ceil(w / columns) visual rows. Every line's row count is
// estimated from its text when it arrives (and again when the width changes) and kept in a
// Fenwick tree, so that the row offset of any line and the line at any scroll position cost
// O(log n). Rendered lines are measured, and a line whose real height differs (wide or combining
// characters, tabs, fallback fonts) is corrected; the first visible line stays where it was.

const STREAM_CODE = { stdout: 0, stderr: 1, system: 2 };
const STREAM_TAG = ['', 'err', 'sys'];
const STREAM_CLASS = ['log-row s-stdout', 'log-row s-stderr', 'log-row s-system'];
const OVERSCAN = 20;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Monospace cells a line needs, tabs expanded to 8: exact for printable ASCII, an estimate
 * otherwise (returned negated, so that the caller knows to measure it).
 */
function lineCells(s) {
  if (PRINTABLE_ASCII.test(s)) return s.length;
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (c === 9) n += 8 - (n % 8);
    else if ((c >= 0x300 && c < 0x370) || (c >= 0x200b && c <= 0x200f) || c === 0xfe0f) n += 0;
    else if (isWide(c)) n += 2;
    else n += 1;
  }
  return -n;
}

/** East Asian wide and fullwidth characters, and emoji: two cells. */
function isWide(c) {
  return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3)
    || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60)
    || (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd);
}

/** Row counts of the lines, with prefix sums and search in O(log n) (a Fenwick tree). */
class RowIndex {
  constructor() {
    this.vals = [];
    this.tree = [0];
    this.sum = 0;
  }

  get length() {
    return this.vals.length;
  }

  push(v) {
    const i = this.vals.length + 1;
    this.vals.push(v);
    this.tree.push(v + this.prefix(i - 1) - this.prefix(i - (i & -i)));
    this.sum += v;
  }

  /** Rows of line k (0-based). */
  get(k) {
    return this.vals[k];
  }

  set(k, v) {
    const d = v - this.vals[k];
    if (!d) return;
    this.vals[k] = v;
    this.sum += d;
    for (let i = k + 1; i < this.tree.length; i += i & -i) this.tree[i] += d;
  }

  /** Rows of lines 0..k-1. */
  prefix(k) {
    let s = 0;
    for (let i = k; i > 0; i -= i & -i) s += this.tree[i];
    return s;
  }

  /** The line that holds visual row r (clamped to the lines there are). */
  find(r) {
    const n = this.vals.length;
    if (n === 0) return 0;
    let pos = 0;
    let rem = r;
    let step = 1;
    while (step * 2 <= n) step *= 2;
    for (; step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= n && this.tree[next] <= rem) {
        pos = next;
        rem -= this.tree[next];
      }
    }
    return Math.min(pos, n - 1);
  }

  /** Replace every value (fn(k) for line k) in O(n). */
  rebuild(fn) {
    const n = this.vals.length;
    const tree = new Array(n + 1).fill(0);
    let sum = 0;
    for (let k = 0; k < n; k += 1) {
      const v = fn(k);
      this.vals[k] = v;
      sum += v;
      tree[k + 1] += v;
      const up = (k + 1) + ((k + 1) & -(k + 1));
      if (up <= n) tree[up] += tree[k + 1];
    }
    this.tree = tree;
    this.sum = sum;
  }
}

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
    this.cells = [];
    this.rows = new RowIndex();
    this.following = true;
    this.unseen = 0;
    this.frame = 0;
    this.renderedKey = '';
    this.pool = [];
    this.lh = 20;
    this.cols = 80;
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
      const anchor = this.anchor();
      if (this.measure()) this.reflow(anchor);
      this.renderedKey = '';
      this.schedule();
    };
    this.resizeObserver = typeof ResizeObserver === 'function' ? new ResizeObserver(this.onResize) : null;
    if (this.resizeObserver) this.resizeObserver.observe(this.scroller);
    if (document.fonts && document.fonts.ready) document.fonts.ready.then(() => this.frame !== -1 && this.onResize());
  }

  /**
   * Measure one row's height and how many monospace cells fit beside the gutter (fonts, user
   * settings and the width decide both). -> whether the number of cells changed.
   */
  measure() {
    const probe = makeRow();
    probe.className = 'log-row s-stdout';
    probe.firstChild.textContent = '8'.repeat(Math.max(this.digits, 3));
    probe.lastChild.textContent = 'M';
    const ruler = document.createElement('span');
    ruler.textContent = 'M'.repeat(100);
    ruler.style.cssText = 'position:absolute;visibility:hidden;white-space:pre';
    probe.lastChild.appendChild(ruler);
    this.win.appendChild(probe);
    const h = probe.getBoundingClientRect().height;
    const ch = ruler.getBoundingClientRect().width / 100;
    const tx = probe.lastChild;
    const style = getComputedStyle(tx);
    const width = tx.getBoundingClientRect().width - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    probe.remove();
    if (h > 0) this.lh = h;
    if (!(ch > 0 && width > 0)) return false;
    const cols = Math.max(1, Math.floor((width + 0.01) / ch));
    if (cols === this.cols) return false;
    this.cols = cols;
    return true;
  }

  /** Rows a line of w cells (see lineCells) takes at the current width. */
  rowsFor(w) {
    const cells = Math.abs(w);
    return cells <= this.cols ? 1 : Math.ceil(cells / this.cols);
  }

  /** Whether line i's height must be measured: estimated, or near or past the wrap. */
  unsure(i) {
    const w = this.cells[i];
    return w < 0 || w >= this.cols - 1;
  }

  /** The first visible line and how far the view's top is into it (px). */
  anchor() {
    const top = this.scroller.scrollTop;
    const line = this.rows.find(Math.floor(top / this.lh));
    return { line, within: top - this.rows.prefix(line) * this.lh };
  }

  /** Estimate every line again (the width changed); keep the anchor line at the top. */
  reflow(anchor) {
    this.rows.rebuild((k) => this.rowsFor(this.cells[k]));
    this.setHeight();
    if (!this.following && this.lines.length) {
      this.scroller.scrollTop = this.rows.prefix(anchor.line) * this.lh + Math.min(anchor.within, this.rows.get(anchor.line) * this.lh);
    }
  }

  setHeight() {
    const height = `${this.rows.sum * this.lh}px`;
    if (this.sizer.style.height !== height) this.sizer.style.height = height;
  }

  /** Number of lines held. */
  get count() {
    return this.lines.length;
  }

  /** Append log records ({t, stream, line}); the DOM catches up on the next animation frame. */
  append(records) {
    for (const r of records) {
      const raw = typeof r.line === 'string' ? r.line : String(r.line ?? '');
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const w = lineCells(line);
      this.lines.push(line);
      this.streams.push(STREAM_CODE[r.stream] ?? 0);
      this.times.push(typeof r.t === 'number' ? r.t : 0);
      this.cells.push(w);
      this.rows.push(this.rowsFor(w));
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
      const anchor = this.anchor();
      if (this.measure()) this.reflow(anchor);
    }
    /* Render, measure, correct: at most three rounds (one is the rule, more only when the
       corrected lines move the view onto lines never measured). */
    for (let round = 0; round < 3; round += 1) {
      this.setHeight();
      if (this.following) this.stickToBottom();
      if (!this.render() || !this.correct()) break;
      this.renderedKey = '';
    }
  }

  stickToBottom() {
    const max = this.scroller.scrollHeight - this.scroller.clientHeight;
    if (max > 0 && Math.abs(this.scroller.scrollTop - max) > 1) this.scroller.scrollTop = max;
  }

  /** Put the visible lines (and OVERSCAN more each side) in the DOM. -> whether it changed. */
  render() {
    const n = this.lines.length;
    const top = this.scroller.scrollTop;
    const view = this.scroller.clientHeight || 400;
    const first = n ? Math.max(0, this.rows.find(Math.floor(top / this.lh)) - OVERSCAN) : 0;
    const last = n ? Math.min(n, this.rows.find(Math.ceil((top + view) / this.lh)) + 1 + OVERSCAN) : 0;
    const key = `${first}:${last}:${this.cols}`;
    if (key === this.renderedKey) return false;
    this.renderedKey = key;
    this.first = first;
    this.win.style.transform = `translateY(${this.rows.prefix(first) * this.lh}px)`;
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
      if (row.lastChild.textContent !== this.lines[i]) row.lastChild.textContent = this.lines[i];
      if (kids[k] !== row) this.win.insertBefore(row, kids[k] ?? null);
    }
    while (this.win.children.length > count) this.win.lastChild.remove();
    return true;
  }

  /**
   * Measure the rendered lines; where one's height is not the estimate, take the measure and
   * keep the first visible line where it was. -> whether anything changed.
   */
  correct() {
    const kids = this.win.children;
    const anchor = this.following ? null : this.anchor();
    let changed = false;
    for (let k = 0; k < kids.length; k += 1) {
      if (!this.unsure(this.first + k)) continue;
      const h = kids[k].getBoundingClientRect().height;
      const rows = Math.max(1, Math.round(h / this.lh));
      if (h > 0 && rows !== this.rows.get(this.first + k)) {
        this.rows.set(this.first + k, rows);
        changed = true;
      }
    }
    if (changed && anchor) {
      this.setHeight();
      this.scroller.scrollTop = this.rows.prefix(anchor.line) * this.lh + anchor.within;
    }
    return changed;
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = -1;
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
