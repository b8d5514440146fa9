// params: the agent's parameters as a form built from its schema (GET /api/agent), in labbox's
// JSON Schema subset (scripts/agent/params.py). The form checks what the server checks, in the
// same words; a field left empty is left out of the params (the agent uses its default).

/** The JSON Schema types a form can edit. */
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array']);

/** Is schema one this page can build a form from (the subset, roughly: the server checked it)? */
export function usableSchema(schema) {
  return !!schema && typeof schema === 'object' && schema.type === 'object'
    && schema.properties && typeof schema.properties === 'object'
    && Object.values(schema.properties).every((p) => p && TYPES.has(p.type));
}

/** Why v is not valid for prop, in params.py's words (value_error), or '' when it is. */
export function valueError(prop, v) {
  const t = prop.type;
  if (t === 'string' && typeof v !== 'string') return 'must be a string';
  if (t === 'boolean' && typeof v !== 'boolean') return 'must be true or false';
  if (t === 'array' && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) return 'must be a list of strings';
  if (t === 'number' || t === 'integer') {
    if (typeof v !== 'number' || !Number.isFinite(v)) return t === 'number' ? 'must be a number' : 'must be an integer';
    if (t === 'integer' && !Number.isInteger(v)) return 'must be an integer';
    const lo = typeof prop.minimum === 'number' ? prop.minimum : null;
    const hi = typeof prop.maximum === 'number' ? prop.maximum : null;
    if ((lo !== null && v < lo) || (hi !== null && v > hi)) {
      if (lo !== null && hi !== null) return `must be from ${lo} to ${hi}`;
      return lo !== null ? `must be at least ${lo}` : `must be at most ${hi}`;
    }
  }
  if (t === 'string' && typeof prop.maxLength === 'number' && [...v].length > prop.maxLength) {
    return `must be at most ${prop.maxLength} characters`;
  }
  if (Array.isArray(prop.enum) && !prop.enum.some((e) => e === v)) {
    return `must be one of ${prop.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  }
  return '';
}

export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'className') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** The words for a default value, or '' when the property has none. */
function defaultText(prop) {
  if (!('default' in prop)) return '';
  const d = prop.default;
  if (typeof d === 'boolean') return d ? 'yes' : 'no';
  if (Array.isArray(d)) return d.join(', ');
  return String(d);
}

/** One parameter's control: a select for an enum or a boolean, else a text or number input. */
function control(prop, id, describedBy) {
  const common = { id, 'aria-describedby': describedBy };
  const dflt = defaultText(prop);
  if (Array.isArray(prop.enum) || prop.type === 'boolean') {
    const options = prop.type === 'boolean' ? [[true, 'Yes'], [false, 'No']] : prop.enum.map((v) => [v, String(v)]);
    const sel = el('select', common,
      el('option', { value: '' }, dflt ? `Default (${dflt})` : 'Not set'));
    options.forEach(([, label], i) => sel.append(el('option', { value: String(i) }, label)));
    sel.labboxValues = options.map(([v]) => v);
    return sel;
  }
  const input = el('input', {
    ...common, type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off',
  });
  if (prop.type === 'number' || prop.type === 'integer') input.setAttribute('inputmode', prop.type === 'integer' ? 'numeric' : 'decimal');
  if (dflt) input.placeholder = `Default: ${dflt}`;
  else if (prop.type === 'array') input.placeholder = 'Values separated by commas';
  return input;
}

/** The value a control holds: undefined when left empty, else what the server would get. */
function readControl(prop, c) {
  if (c.tagName === 'SELECT') return c.value === '' ? undefined : c.labboxValues[Number(c.value)];
  const text = c.value.trim();
  if (text === '') return undefined;
  if (prop.type === 'number' || prop.type === 'integer') {
    return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : text;
  }
  if (prop.type === 'array') return text.split(',').map((s) => s.trim()).filter(Boolean);
  return c.value;
}

function writeControl(prop, c, v) {
  if (c.tagName === 'SELECT') {
    const i = c.labboxValues.findIndex((x) => x === v);
    c.value = i >= 0 ? String(i) : '';
  } else {
    c.value = v === undefined ? '' : Array.isArray(v) ? v.join(', ') : String(v);
  }
}

/** A form for a schema, in host. */
export class ParamsForm {
  constructor(host, schema) {
    this.host = host;
    this.schema = schema;
    this.fields = [];
    const props = Object.entries(schema.properties);
    const list = el('div', { className: 'param-fields' });
    props.forEach(([name, prop], i) => {
      const id = `param-${i}`;
      const help = el('p', { className: 'muted small param-help', id: `${id}-help` }, prop.description || '');
      help.hidden = !prop.description;
      const error = el('p', { className: 'field-error', id: `${id}-error`, role: 'alert' });
      error.hidden = true;
      const c = control(prop, id, `${id}-help ${id}-error`);
      const label = el('label', { className: 'label', for: id }, prop.title || name, ' ',
        el('code', { className: 'param-name muted small' }, name));
      const field = el('div', { className: 'param-field', dataset: { param: name } }, label, c, help, error);
      c.addEventListener('input', () => this.showError(this.fields[i], ''));
      c.addEventListener('change', () => this.showError(this.fields[i], ''));
      this.fields.push({ name, prop, control: c, error });
      list.append(field);
    });
    host.replaceChildren(list);
  }

  showError(f, msg) {
    f.error.textContent = msg;
    f.error.hidden = !msg;
    if (msg) f.control.setAttribute('aria-invalid', 'true');
    else f.control.removeAttribute('aria-invalid');
  }

  /** {params, errors}: the filled fields (empty ones left out) and what is wrong with them. */
  collect() {
    const params = {};
    const errors = [];
    for (const f of this.fields) {
      const v = readControl(f.prop, f.control);
      if (v === undefined) {
        this.showError(f, '');
        continue;
      }
      const why = valueError(f.prop, v);
      this.showError(f, why ? `${f.prop.title || f.name} ${why}.` : '');
      if (why) errors.push(f);
      else params[f.name] = v;
    }
    if (errors.length) errors[0].control.focus();
    return { params, errors: errors.map((f) => f.name) };
  }

  /** Fill the form from params (a re-run); names the schema lacks are ignored. */
  fill(params) {
    for (const f of this.fields) writeControl(f.prop, f.control, params ? params[f.name] : undefined);
  }

  /** Show the server's refusal (bad_params) at its field; false when no field has that name. */
  markError(name, detail) {
    const f = this.fields.find((x) => x.name === name);
    if (!f) return false;
    this.showError(f, detail);
    f.control.focus();
    return true;
  }

  clear() {
    for (const f of this.fields) {
      writeControl(f.prop, f.control, undefined);
      this.showError(f, '');
    }
  }

  setDisabled(on) {
    for (const f of this.fields) f.control.disabled = on;
  }
}
