// Building DOM nodes without innerHTML (text is always text, never markup).

/**
 * `el('td', {class: 'num', 'data-value': 3}, '3')`: attributes whose value is null,
 * undefined or false are left out; `true` sets an empty attribute. Children may be
 * strings, numbers, nodes, or arrays of them.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'style') throw new Error('inline styles are not allowed');
    node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.append(child);
    else node.append(document.createTextNode(String(child)));
  }
}

/**
 * A data table in its own scrolling region. `columns`: [{key, label, format, numeric}];
 * `rows`: plain objects. Each cell carries `data-column` and, for numbers, `data-value`
 * with the raw number.
 */
export function dataTable({ name, caption, columns, rows, rowAttrs, extraAttrs }) {
  const head = el('tr', null, columns.map((c) => el('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)));
  const body = rows.map((row) =>
    el(
      'tr',
      rowAttrs ? rowAttrs(row) : null,
      columns.map((c, i) => {
        const raw = c.value ? c.value(row) : row[c.key];
        const content = c.render ? c.render(row, raw) : c.format ? c.format(raw, row) : raw === null || raw === undefined || raw === '' ? '–' : String(raw);
        const attrs = {
          class: [c.numeric ? 'num' : '', c.className || ''].join(' ').trim() || null,
          'data-column': c.key,
          'data-value': raw === null || raw === undefined ? '' : typeof raw === 'object' ? JSON.stringify(raw) : String(raw),
        };
        return i === 0 && c.rowHeader ? el('th', { ...attrs, scope: 'row' }, content) : el('td', attrs, content);
      }),
    ),
  );
  const table = el(
    'table',
    { class: 'data-table', 'data-table': name, ...(extraAttrs || {}) },
    el('caption', null, caption),
    el('thead', null, head),
    el('tbody', null, body),
  );
  return el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${caption} (table)` }, table);
}
