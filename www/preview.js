// preview: the first rows of a CSV or TSV output as a table. Only the file's first bytes are
// fetched (an HTTP range), parsed here (RFC 4180 quotes for CSV, tabs for TSV), and every cell
// goes into the page as text, never as HTML.

export const PREVIEW_ROWS = 100;
const PREVIEW_BYTES = 256 * 1024;
const MAX_COLUMNS = 60;

/** Rows of text: CSV with quoted fields (doubled quotes inside), or TSV. Stops after max rows. */
export function parseTable(text, tsv, max) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < max; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"' && !tsv && cell === '') {
      quoted = true;
    } else if (c === (tsv ? '\t' : ',')) {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else {
      cell += c;
    }
  }
  if ((cell !== '' || row.length) && rows.length < max) rows.push([...row, cell]);
  return rows;
}

/** A table element of rows (the first one as the header); cells as text. */
export function tableOf(rows, caption) {
  const table = document.createElement('table');
  table.className = 'preview-table';
  const cap = document.createElement('caption');
  cap.textContent = caption;
  table.append(cap);
  const width = Math.min(MAX_COLUMNS, Math.max(0, ...rows.map((r) => r.length)));
  rows.forEach((r, i) => {
    const tr = document.createElement('tr');
    for (let k = 0; k < width; k += 1) {
      const td = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) td.scope = 'col';
      td.textContent = r[k] ?? '';
      tr.append(td);
    }
    (i === 0 ? (table.tHead ?? table.createTHead()) : (table.tBodies[0] ?? table.createTBody())).append(tr);
  });
  return table;
}

/**
 * The preview of one output (url, its type): a table of the header and the first PREVIEW_ROWS
 * rows, with a caption that says how much is shown. Rejects on a network error.
 */
export async function previewTable(url, type, signal) {
  const res = await fetch(url, { headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` }, signal, cache: 'no-store' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  let text = new TextDecoder('utf-8').decode(await res.arrayBuffer());
  const total = Number((/\/(\d+)$/.exec(res.headers.get('Content-Range') ?? '') ?? [])[1]);
  const partial = res.status === 206 && Number.isFinite(total) && total > PREVIEW_BYTES;
  if (partial) text = text.slice(0, text.lastIndexOf('\n') + 1); /* no half row */
  /* The header, PREVIEW_ROWS rows, and one more to know whether there are more. */
  const rows = parseTable(text, type === 'text/tab-separated-values', PREVIEW_ROWS + 2);
  const more = partial || rows.length > PREVIEW_ROWS + 1;
  const shown = rows.slice(0, PREVIEW_ROWS + 1);
  const body = Math.max(0, shown.length - 1);
  return tableOf(shown, more ? `The first ${body} rows` : `All ${body} rows`);
}
