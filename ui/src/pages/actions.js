// App actions: deploy a release, rollback, scale, restart, config — each
// confirmed in a dialog that shows the API's message on failure; once
// accepted, the deployment is followed on the event stream (DeploymentProgress).
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { appPath, get, patch, post } from '../lib/api.js';
import { recent, subscribe } from '../lib/live.js';
import { Badge, Dialog, ErrorLine } from '../lib/components.js';
import { STATE_KIND } from '../lib/model.js';
import { clock } from '../lib/format.js';

// A dialog whose submit calls `run()`; closes with its answer on success.
function ActionDialog({ title, verb, danger, onClose, run, children }) {
  const [state, setState] = useState({ busy: false, error: null });
  const submit = async (e) => {
    e.preventDefault();
    setState({ busy: true, error: null });
    try {
      onClose(await run());
    } catch (error) { setState({ busy: false, error }); }
  };
  return html`<${Dialog} title=${title} onClose=${() => onClose(null)}>
    <form class="form" onSubmit=${submit} data-action=${verb}>
      ${children}
      <${ErrorLine} error=${state.error} />
      <footer><button type="button" onClick=${() => onClose(null)}>Cancel</button>
        <button class=${danger ? 'danger' : 'primary'} disabled=${state.busy} data-confirm=${verb}>
          ${state.busy ? 'Working…' : verb}</button></footer>
    </form></${Dialog}>`;
}

function ScaleDialog({ app, onClose }) {
  const [n, setN] = useState(String(app.instances));
  return html`<${ActionDialog} title=${`Scale ${app.id}`} verb="Scale" onClose=${onClose}
      run=${() => post(`/api/v1/apps/${appPath(app.id)}/scale`, { instances: Number(n) })}>
    <p>Now ${app.instances} wanted, ${app.tasksRunning} running. Scaling keeps release r${app.release}.</p>
    <label>instances <input name="instances" type="number" step="1" value=${n} onInput=${(e) => setN(e.target.value)} autofocus /></label>
  </${ActionDialog}>`;
}

function RestartDialog({ app, onClose }) {
  return html`<${ActionDialog} title=${`Restart ${app.id}`} verb="Restart" danger=${true} onClose=${onClose}
      run=${() => post(`/api/v1/apps/${appPath(app.id)}/restart`)}>
    <p>Replaces all ${app.instances} instances of r${app.release} with new ones, rolling under the app's upgrade strategy.</p>
  </${ActionDialog}>`;
}

function ReleaseDialog({ app, releases, rollback, initial, onClose }) {
  const ready = releases.filter((r) => r.status === 'ready' && r.number !== app.release);
  const [n, setN] = useState(String(initial || (rollback ? app.previousRelease || (ready[0] && ready[0].number) : ready[0] && ready[0].number) || ''));
  const verb = rollback ? 'Rollback' : 'Deploy';
  const run = () => post(`/api/v1/apps/${appPath(app.id)}/${rollback ? 'rollback' : 'deploy'}`, n ? { release: Number(n) } : {});
  return html`<${ActionDialog} title=${`${verb} ${app.id}`} verb=${verb} danger=${rollback} onClose=${onClose} run=${run}>
    <p>Current release r${app.release}. ${rollback ? 'A rollback deploys the earlier release with its own environment; the app\'s config becomes that release\'s.' : 'Starts instances of the chosen release and retires the old ones.'}</p>
    <label>release <select name="release" value=${n} onChange=${(e) => setN(e.target.value)}>
      ${ready.length === 0 && html`<option value="">no other ready release</option>`}
      ${ready.map((r) => html`<option value=${r.number}>r${r.number} · ${r.cause}${r.sha ? ` · ${r.sha.slice(0, 8)}` : ''} · ${r.created.slice(0, 19).replace('T', ' ')}</option>`)}
    </select></label>
  </${ActionDialog}>`;
}

function ConfigDialog({ app, onClose }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    get(`/api/v1/apps/${appPath(app.id)}/config`).then(
      (doc) => setRows(Object.entries(doc.config || {}).map(([k, v]) => ({ key: k, orig: k, value: v, masked: true, removed: false }))),
      setError);
  }, [app.id]);
  const update = (i, field, value) => setRows(rows.map((r, j) => (j === i ? { ...r, [field]: value, masked: field === 'value' ? false : r.masked } : r)));
  const changes = () => {
    const out = {};
    for (const r of rows || []) {
      if (r.orig && (r.removed || r.key !== r.orig)) out[r.orig] = null;
      if (!r.removed && r.key && (!r.orig || !r.masked || r.key !== r.orig)) out[r.key] = r.value;
    }
    return out;
  };
  const run = () => {
    const body = changes();
    if (Object.keys(body).length === 0) return Promise.reject(new Error('nothing changed'));
    return patch(`/api/v1/apps/${appPath(app.id)}/config`, body);
  };
  return html`<${ActionDialog} title=${`Config of ${app.id}`} verb="Save and deploy" onClose=${onClose} run=${run}>
    <p>Each change makes a new release of the same build, rolled out. Values are hidden (****) until edited.</p>
    <${ErrorLine} error=${error} />
    ${rows && html`<table class="grid config"><thead><tr><th>key</th><th>value</th><th></th></tr></thead><tbody>
      ${rows.map((r, i) => html`<tr class=${r.removed ? 'removed' : ''}>
        <td><input class="mono" name=${`key-${i}`} value=${r.key} onInput=${(e) => update(i, 'key', e.target.value)} /></td>
        <td><input class="mono" name=${`value-${i}`} value=${r.value} onFocus=${() => r.masked && update(i, 'value', '')} onInput=${(e) => update(i, 'value', e.target.value)} /></td>
        <td><button type="button" class="small" onClick=${() => update(i, 'removed', !r.removed)}>${r.removed ? 'keep' : 'unset'}</button></td></tr>`)}
      </tbody></table>
      <button type="button" class="small" onClick=${() => setRows([...rows, { key: '', orig: '', value: '', masked: false, removed: false }])}>Add variable</button>`}
  </${ActionDialog}>`;
}

// Follows one deployment on the event stream until it ends.
export function DeploymentProgress({ progress, onDone }) {
  const [steps, setSteps] = useState([]);
  const [final, setFinal] = useState(null);
  const id = progress.answer && progress.answer.deploymentId;
  useEffect(() => {
    if (!id) return undefined;
    const seen = new Set();
    const take = (e) => {
      const d = e.deployment;
      if (!d || d.id !== id || seen.has(e.id)) return;
      seen.add(e.id);
      setSteps((s) => [...s, { time: e.time, type: e.type, step: d.step || d.status }]);
      if (/^deployment_(succeeded|failed|canceled)$/.test(e.type)) { setFinal(d); if (onDone) onDone(); }
    };
    // A quick deployment may have ended before the POST's answer arrived.
    recent.forEach(take);
    return subscribe(take);
  }, [id]);
  const status = !id ? 'nothing to do' : final ? final.status : 'running';
  return html`<div class=${`progress ${STATE_KIND[status] || 'info'}`} data-progress=${status}
      data-release=${progress.answer && progress.answer.release} role="status">
    <div><b>${progress.what}</b> ${progress.answer && progress.answer.release ? `· release r${progress.answer.release}` : ''}
      ${id ? html` · deployment <span class="mono">${id}</span>` : ''}
      <${Badge} kind=${STATE_KIND[status] || 'info'}>${status}</${Badge}></div>
    ${final && final.reason && html`<div class="error">${final.reason}</div>`}
    ${steps.length > 0 && html`<ol class="steps">${steps.map((s) => html`<li><span class="time">${clock(s.time)}</span> ${s.step}</li>`)}</ol>`}
  </div>`;
}

export const ACTIONS = [
  ['deploy', 'Deploy…'], ['rollback', 'Rollback…'], ['scale', 'Scale…'], ['restart', 'Restart…'], ['config', 'Config…'],
];

export function ActionDialogs({ action, app, releases, initial, onClose }) {
  const done = (what) => (answer) => onClose(answer ? { what, answer } : null);
  switch (action) {
    case 'scale': return html`<${ScaleDialog} app=${app} onClose=${done('scale')} />`;
    case 'restart': return html`<${RestartDialog} app=${app} onClose=${done('restart')} />`;
    case 'deploy': return html`<${ReleaseDialog} app=${app} releases=${releases} initial=${initial} onClose=${done('deploy')} />`;
    case 'rollback': return html`<${ReleaseDialog} app=${app} releases=${releases} rollback=${true} onClose=${done('rollback')} />`;
    case 'config': return html`<${ConfigDialog} app=${app} onClose=${done('config change')} />`;
    default: return null;
  }
}
