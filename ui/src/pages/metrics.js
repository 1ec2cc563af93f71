// Metrics explorer: a Graphite target -> chart, with find-as-you-type on
// metric names (/metrics/find?query=<typed>*), and a time range.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { get, query } from '../lib/api.js';
import { Chart, RANGES } from '../lib/chart.js';
import { Panel } from '../lib/components.js';
import { param, setParam } from '../lib/router.js';

// Completions of the last path in `text`: names under its parent that start
// with what was typed after the last '.'.
function useCompletions(text) {
  const [items, setItems] = useState([]);
  useEffect(() => {
    const m = /([A-Za-z0-9_.*\-{},[\]]*)$/.exec(text);
    const path = m ? m[1] : '';
    if (path.length === 0) { setItems([]); return undefined; }
    const t = setTimeout(() => {
      get(`/metrics/find?${query({ query: `${path}*`, format: 'completer' })}`)
        .then((doc) => setItems((doc.metrics || []).slice(0, 50)), () => setItems([]));
    }, 150);
    return () => clearTimeout(t);
  }, [text]);
  return items;
}

export function Metrics() {
  const [text, setText] = useState(param('target') || 'stele.node.*.load.1');
  const [target, setTarget] = useState(param('target') || 'stele.node.*.load.1');
  const [from, setFrom] = useState(param('from') || '-15min');
  const [open, setOpen] = useState(false);
  const [sel, setSel] = useState(-1);
  const input = useRef(null);
  const items = useCompletions(open ? text : '');
  const run = (t) => { setTarget(t); setParam('target', t); setOpen(false); };
  const pick = (item) => {
    const m = /([A-Za-z0-9_.*\-{},[\]]*)$/.exec(text);
    const next = text.slice(0, text.length - (m ? m[1].length : 0)) + item.path;
    setText(next);
    setSel(-1);
    input.current && input.current.focus();
  };
  const key = (e) => {
    if (e.key === 'ArrowDown') { setSel(Math.min(items.length - 1, sel + 1)); e.preventDefault(); }
    else if (e.key === 'ArrowUp') { setSel(Math.max(-1, sel - 1)); e.preventDefault(); }
    else if (e.key === 'Tab' && items.length) { pick(items[Math.max(0, sel)]); e.preventDefault(); }
    else if (e.key === 'Enter') { if (sel >= 0 && items[sel]) pick(items[sel]); else run(text); e.preventDefault(); }
    else if (e.key === 'Escape') setOpen(false);
  };
  return html`<div class="page">
    <${Panel} title="Metrics explorer">
      <div class="explorer">
        <div class="completer">
          <input ref=${input} class="mono" name="target" aria-label="target" spellcheck="false" value=${text}
            placeholder="stele.task.*.hello-r*.*.cpu.usage"
            onInput=${(e) => { setText(e.target.value); setOpen(true); setSel(-1); }}
            onFocus=${() => setOpen(true)} onBlur=${() => setTimeout(() => setOpen(false), 150)} onKeyDown=${key} />
          ${open && items.length > 0 && html`<ul class="suggestions">${items.map((it, i) => html`
            <li class=${i === sel ? 'sel' : ''} onMouseDown=${(e) => { e.preventDefault(); pick(it); }}>
              <span class="mono">${it.path}</span><span class="muted">${it.is_leaf === '1' || it.is_leaf === true ? 'metric' : 'branch'}</span></li>`)}</ul>`}
        </div>
        <select aria-label="range" value=${from} onChange=${(e) => { setFrom(e.target.value); setParam('from', e.target.value); }}>
          ${RANGES.map((r) => html`<option value=${r}>${r.slice(1)}</option>`)}</select>
        <button class="primary" onClick=${() => run(text)}>Render</button>
      </div>
      <p class="hint">${'Graphite targets and functions, e.g. '}<code>perSecond(stele.task.*.*.*.cpu.usage)</code>${', '}<code>sumSeries(stele.app.*.requests.count)</code>${', '}<code>aliasByNode(stele.node.*.load.1, 2)</code>${'. Tab completes a name, Enter renders.'}</p>
      ${target && html`<${Chart} title=${target} targets=${[target]} from=${from} refreshMs=${15000} />`}
    </${Panel}></div>`;
}
