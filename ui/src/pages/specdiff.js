// The app's spec as JSON (of a chosen release) and the diff between two releases.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { diffLines, stableJson } from '../lib/diff.js';

export function SpecDiff({ app, releases }) {
  const sorted = [...releases].sort((a, b) => b.number - a.number);
  const [right, setRight] = useState(String(app.release || (sorted[0] && sorted[0].number) || ''));
  const [left, setLeft] = useState(String(app.previousRelease || (sorted[1] && sorted[1].number) || ''));
  const spec = (n) => { const r = sorted.find((x) => String(x.number) === n); return r ? stableJson(r.spec) : ''; };
  const options = sorted.map((r) => html`<option value=${r.number}>r${r.number} (${r.status})</option>`);
  const lines = left && left !== right ? diffLines(spec(left), spec(right)) : null;
  const changed = lines ? lines.filter((l) => l.op !== ' ').length : 0;
  return html`<div class="specdiff">
    <div class="filters">
      <label>compare <select aria-label="from release" value=${left} onChange=${(e) => setLeft(e.target.value)}>
        <option value="">(none: show the spec)</option>${options}</select></label>
      <label>with <select aria-label="to release" value=${right} onChange=${(e) => setRight(e.target.value)}>${options}</select></label>
      ${lines && html`<span class="muted small">${changed} changed lines</span>`}
    </div>
    <pre class="log spec" data-spec=${right}>${lines
      ? lines.map((l) => html`<div class=${`d${l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}`}>${l.op} ${l.line}</div>`)
      : spec(right) || (sorted.length ? '' : JSON.stringify(app.spec, null, 2))}</pre>
  </div>`;
}
