// Checks: every check state, failing ones first, with a silence button. The
// checks API is newer than the dashboard: a 404 is said plainly.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { useResource } from '../lib/resource.js';
import { useRefreshOn } from '../lib/live.js';
import { post } from '../lib/api.js';
import { Badge, Dialog, ErrorLine, Panel, VirtualTable } from '../lib/components.js';
import { checkOf, checkRows, CHECK_KIND, CHECK_STATUS } from '../lib/model.js';

const CHECK_EVENTS = /^(check_|silence_)/;

function Unavailable({ error }) {
  if (error && error.status === 404) return html`<div class="empty" data-unavailable="checks">checks: not available on this server yet</div>`;
  return html`<${ErrorLine} error=${error} prefix="checks" />`;
}

// The overview's panel: failing checks only.
export function FailingChecks() {
  const res = useResource('/api/v1/checks/status?failing=1');
  useRefreshOn((e) => CHECK_EVENTS.test(e.type), res.reload, 1000);
  const rows = checkRows(res.data).map(checkOf).filter((c) => c.status !== 0);
  return html`<${Panel} title="Failing checks" id="checks">
    ${res.error ? html`<${Unavailable} error=${res.error} />` : rows.length === 0
      ? html`<div class="empty">${res.data ? 'all checks passing' : 'loading…'}</div>`
      : html`<ul class="checks compact">${rows.slice(0, 20).map((c) => html`<li key=${c.entity + c.name}>
          <${Badge} kind=${CHECK_KIND[c.status]}>${CHECK_STATUS[c.status] || c.status}</${Badge}>
          <b>${c.name}</b> <span class="muted">${c.entity}</span> <span class="small">${c.output}</span></li>`)}</ul>`}
  </${Panel}>`;
}

function SilenceDialog({ check, onClose }) {
  const [minutes, setMinutes] = useState(60);
  const [reason, setReason] = useState('');
  const [state, setState] = useState({ busy: false, error: null });
  const submit = async (e) => {
    e.preventDefault();
    setState({ busy: true, error: null });
    try {
      // Sensu's model: one entity is the subscription "entity:<name>".
      await post('/api/v1/silences', {
        subscription: `entity:${check.entity}`, check: check.name, expire: Number(minutes) * 60, reason, creator: 'dashboard',
      });
      onClose(true);
    } catch (error) { setState({ busy: false, error }); }
  };
  return html`<${Dialog} title=${`Silence ${check.name} on ${check.entity}`} onClose=${() => onClose(false)}>
    <form onSubmit=${submit} class="form">
      <label>for minutes <input name="minutes" type="number" value=${minutes} onInput=${(e) => setMinutes(e.target.value)} /></label>
      <label>reason <input value=${reason} onInput=${(e) => setReason(e.target.value)} placeholder="maintenance" /></label>
      <${ErrorLine} error=${state.error} />
      <footer><button type="button" onClick=${() => onClose(false)}>Cancel</button>
        <button class="primary" disabled=${state.busy} data-confirm="Silence">Silence</button></footer></form></${Dialog}>`;
}

export function Checks() {
  const res = useResource('/api/v1/checks/status');
  const [silencing, setSilencing] = useState(null);
  useRefreshOn((e) => CHECK_EVENTS.test(e.type), res.reload, 1000);
  const rows = checkRows(res.data).map(checkOf).sort((a, b) => b.status - a.status || a.name.localeCompare(b.name));
  const columns = [
    { label: 'status', width: '100px', render: (c) => html`<${Badge} kind=${CHECK_KIND[c.status]}>${CHECK_STATUS[c.status] || c.status}</${Badge}>` },
    { label: 'check', width: 'minmax(120px,1fr)', render: (c) => html`<b>${c.name}</b>` },
    { label: 'entity', width: 'minmax(120px,1fr)', render: (c) => c.entity },
    { label: 'output', width: 'minmax(200px,3fr)', cls: 'small', render: (c) => c.output },
    { label: 'in a row', width: '70px', cls: 'num', render: (c) => c.occurrences },
    { label: '', width: '90px', render: (c) => (c.silenced ? html`<${Badge}>silenced</${Badge}>`
      : html`<button class="small" data-silence=${`${c.entity}/${c.name}`} onClick=${() => setSilencing(c)}>Silence</button>`) },
  ];
  return html`<div class="page">
    <${Panel} title="Checks">
      ${res.error ? html`<${Unavailable} error=${res.error} />` : html`<${VirtualTable} name="checks" columns=${columns}
        rows=${rows} rowKey=${(c) => `${c.entity}/${c.name}`} height=${640} empty=${res.data ? 'no checks defined' : 'loading…'} />`}
    </${Panel}>
    ${silencing && html`<${SilenceDialog} check=${silencing} onClose=${(done) => { setSilencing(null); if (done) res.reload(); }} />`}
  </div>`;
}
