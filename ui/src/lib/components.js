// Small shared pieces: badges, meters, panels, tabs, the virtualised table,
// the confirm dialog and the error line.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { navigate } from './router.js';

export function Badge({ kind, children, title }) {
  return html`<span class=${`badge ${kind || ''}`} title=${title}>${children}</span>`;
}

export function Meter({ used, total, label }) {
  const p = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const kind = p > 90 ? 'bad' : p > 75 ? 'warn' : 'ok';
  return html`<div class="meter" title=${`${Math.round(p)}%`}>
    <div class=${`fill ${kind}`} style=${`width:${p}%`}></div><span>${label}</span></div>`;
}

export function Panel({ title, right, children, id }) {
  return html`<section class="panel" id=${id}>
    <header><h2>${title}</h2><div class="right">${right}</div></header>
    <div class="body">${children}</div></section>`;
}

export function ErrorLine({ error, prefix }) {
  if (!error) return null;
  const text = error.describe ? error.describe() : String(error.message || error);
  return html`<div class="error" role="alert">${prefix ? `${prefix}: ` : ''}${text}</div>`;
}

export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}

export function Tabs({ tabs, active, onSelect }) {
  return html`<nav class="tabs">${tabs.map(([key, label]) => html`
    <button class=${key === active ? 'active' : ''} data-tab=${key} onClick=${() => onSelect(key)}>${label}</button>`)}
  </nav>`;
}

export function Link({ href, children, cls }) {
  const click = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} class=${cls} onClick=${click}>${children}</a>`;
}

const ROW = 28;

// A table that renders only the rows in view (plus a margin), so thousands
// of rows cost what a screenful costs. columns: [{label, width, render(row),
// cls?}]; `height` caps the viewport (the table shrinks to fit fewer rows).
export function VirtualTable({ columns, rows, rowKey, height = 420, empty = 'nothing here', name }) {
  const box = useRef(null);
  const [top, setTop] = useState(0);
  const total = rows.length * ROW;
  const view = Math.min(height, Math.max(total, ROW));
  const first = Math.max(0, Math.floor(top / ROW) - 10);
  const last = Math.min(rows.length, Math.ceil((top + view) / ROW) + 10);
  const grid = columns.map((c) => c.width || '1fr').join(' ');
  useEffect(() => { if (box.current && top > total) box.current.scrollTop = 0; }, [total]);
  return html`<div class="vtable" data-table=${name} data-rows=${rows.length}>
    <div class="vhead" style=${`grid-template-columns:${grid}`}>
      ${columns.map((c) => html`<div class=${c.cls || ''}>${c.label}</div>`)}</div>
    ${rows.length === 0 ? html`<div class="empty">${empty}</div>` : html`
    <div class="vbody" ref=${box} style=${`height:${view}px`} onScroll=${(e) => setTop(e.currentTarget.scrollTop)}>
      <div style=${`height:${total}px;position:relative`}>
        ${rows.slice(first, last).map((r, i) => html`
          <div class="vrow" key=${rowKey(r)} data-key=${rowKey(r)}
               style=${`grid-template-columns:${grid};transform:translateY(${(first + i) * ROW}px)`}>
            ${columns.map((c) => html`<div class=${c.cls || ''}>${c.render(r)}</div>`)}
          </div>`)}
      </div></div>`}
  </div>`;
}

// A modal dialog (the native <dialog>): shown while mounted.
export function Dialog({ title, children, onClose, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => { e.preventDefault(); onClose(); };
    d.addEventListener('cancel', cancel);
    return () => d.removeEventListener('cancel', cancel);
  }, []);
  return html`<dialog ref=${ref} class=${wide ? 'wide' : ''}>
    <header><h3>${title}</h3><button class="icon" aria-label="close" onClick=${onClose}>×</button></header>
    ${children}</dialog>`;
}
