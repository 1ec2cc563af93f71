// App page: summary and actions, instances, routes, releases with their
// pipeline log, the spec with a diff between releases, the live log tail and
// charts. Reloads on the app's events (debounced).
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { appName, appPath, get } from '../lib/api.js';
import { useResource } from '../lib/resource.js';
import { useRefreshOn } from '../lib/live.js';
import { Badge, ErrorLine, Link, Tabs, VirtualTable } from '../lib/components.js';
import { appHealth, deploymentLine, HEALTH_KIND, isInstance, isLive, STATE_KIND } from '../lib/model.js';
import { ago, bytes, duration, stamp } from '../lib/format.js';
import { param, setParam } from '../lib/router.js';
import { InstanceTable } from './instances.js';
import { ACTIONS, ActionDialogs, DeploymentProgress } from './actions.js';
import { LogTail } from './logtail.js';
import { AppCharts } from './appcharts.js';
import { SpecDiff } from './specdiff.js';

const TABS = [['instances', 'Instances'], ['releases', 'Releases'], ['spec', 'Spec'], ['logs', 'Logs'], ['metrics', 'Metrics'], ['routes', 'Routes']];

function Summary({ app, releases }) {
  const h = appHealth(app);
  const current = releases.find((r) => r.number === app.release);
  const pushed = releases.some((r) => r.sha);
  return html`<div class="summary">
    <div><label>health</label><${Badge} kind=${HEALTH_KIND[h]}>${h}</${Badge}></div>
    <div><label>instances</label><span data-field="instances">${app.tasksHealthy} healthy / ${app.tasksRunning} running of ${app.instances}</span></div>
    <div><label>release</label><b>r${app.release}</b>${app.previousRelease ? html` <span class="muted">(previous r${app.previousRelease})</span>` : ''}</div>
    ${pushed && html`<div><label>repository</label><span class="mono">${location.origin}/git/${appName(app.id)}.git</span></div>`}
    ${current && current.sha && html`<div><label>branch · commit</label><span class="mono">${(current.ref || '').replace('refs/heads/', '')} · ${current.sha.slice(0, 10)}</span></div>`}
    <div><label>created</label>${ago(app.created)}</div>
    ${app.deployment && html`<div><label>deployment</label><${Badge} kind="info">${deploymentLine(app.deployment)}</${Badge}></div>`}
    ${app.waiting && html`<div class="wide"><label>waiting</label><span class="warn-text">${app.waiting}</span></div>`}
  </div>`;
}

function ReleaseLog({ id, n, status }) {
  const [text, setText] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setText(null);
    get(`/api/v1/apps/${appPath(id)}/releases/${n}/log`).then((t) => setText(typeof t === 'string' ? t : JSON.stringify(t, null, 2)), setError);
  }, [id, n, status]);
  return html`<div class="release-log"><h3>Pipeline output of r${n}</h3><${ErrorLine} error=${error} />
    <pre class="log" data-release-log=${n}>${text === null ? 'loading…' : text || '(no output: a release made through the API has no pipeline)'}</pre></div>`;
}

function Releases({ app, releases, onDeploy }) {
  const [open, setOpen] = useState(null);
  const sorted = [...releases].sort((a, b) => b.number - a.number);
  const shown = open || (sorted[0] && sorted[0].number);
  const columns = [
    { label: 'release', width: '80px', render: (r) => html`<b>r${r.number}</b>${r.current ? html` <${Badge} kind="ok">current</${Badge}>` : ''}` },
    { label: 'status', width: '90px', render: (r) => html`<${Badge} kind=${STATE_KIND[r.status]}>${r.status}</${Badge}>` },
    { label: 'cause', width: '70px', render: (r) => r.cause },
    { label: 'commit', width: 'minmax(120px,1fr)', cls: 'mono small', render: (r) => (r.sha ? `${(r.ref || '').replace('refs/heads/', '')} ${r.sha.slice(0, 10)}` : '–') },
    { label: 'step', width: 'minmax(100px,1.2fr)', cls: 'small', render: (r) => (r.reason ? html`<span class="warn-text" title=${r.reason}>${r.step}: ${r.reason}</span>` : r.step || '') },
    { label: 'durations', width: 'minmax(140px,1.2fr)', cls: 'small muted', render: (r) => Object.entries(r.durations || {}).map(([k, v]) => `${k} ${duration(v)}`).join(' · ') },
    { label: 'slug', width: '80px', cls: 'num small', render: (r) => (r.artifact ? bytes(r.artifactSize) : '–') },
    { label: 'created', width: '150px', cls: 'mono small', render: (r) => stamp(r.created) },
    { label: '', width: '130px', render: (r) => html`<button class="small" onClick=${() => setOpen(r.number)}>Log</button>
      ${r.status === 'ready' && !r.current && html` <button class="small" data-deploy=${r.number} onClick=${() => onDeploy(r.number)}>Deploy</button>`}` },
  ];
  return html`<${VirtualTable} name="releases" columns=${columns} rows=${sorted} rowKey=${(r) => r.number} height=${300} empty="no releases yet: push to the repository" />
    ${shown && html`<${ReleaseLog} id=${app.id} n=${shown} status=${(sorted.find((r) => r.number === shown) || {}).status} />`}`;
}

function Routes({ app }) {
  const res = useResource('/api/v1/routes');
  useRefreshOn((e) => e.app === app.id && /^(task_|health_|deployment_)/.test(e.type), res.reload, 1000);
  if (res.error) return html`<${ErrorLine} error=${res.error} />`;
  if (!res.data) return html`<div class="empty">loading…</div>`;
  const routes = (res.data.routes || []).filter((r) => r.app === app.id);
  const pool = ((res.data.apps || {})[app.id] || {}).instances || [];
  return html`<table class="grid"><thead><tr><th>host</th><th>path</th><th>port index</th><th>balance</th><th>https redirect</th></tr></thead>
    <tbody>${routes.map((r) => html`<tr><td class="mono">${r.host}</td><td class="mono">${r.path}</td><td>${r.portIndex}</td><td>${r.balance}</td><td>${r.redirectHttps ? 'yes' : 'no'}</td></tr>`)}
    ${routes.length === 0 && html`<tr><td colspan="5" class="empty">the app has no routes (spec "routes")</td></tr>`}</tbody></table>
    <h3>Pool</h3><table class="grid"><thead><tr><th>instance</th><th>upstream</th><th>healthy</th></tr></thead>
    <tbody>${pool.map((i) => html`<tr><td class="mono">${i.task}</td><td class="mono">${i.host}:${(i.ports || []).join(',')}</td>
      <td><${Badge} kind=${i.healthy ? 'ok' : 'bad'}>${i.healthy ? 'yes' : 'no'}</${Badge}></td></tr>`)}
    ${pool.length === 0 && html`<tr><td colspan="3" class="empty">no instances in the router's pool</td></tr>`}</tbody></table>`;
}

export function AppPage({ id }) {
  const base = `/api/v1/apps/${appPath(id)}`;
  const app = useResource(base);
  const tasks = useResource(`${base}/tasks`);
  const releases = useResource(`${base}/releases`);
  const [tab, setTab] = useState(param('tab') || 'instances');
  const [action, setAction] = useState(null);
  const [progress, setProgress] = useState(null);
  const mine = (e) => e.app === id;
  useRefreshOn((e) => mine(e) && /^(app_|deployment_|task_|health_|release_created|config_)/.test(e.type), () => { app.reload(); tasks.reload(); });
  useRefreshOn((e) => mine(e) && /^(release_|config_|deployment_succeeded)/.test(e.type), releases.reload);
  const select = (t) => { setTab(t); setParam('tab', t); };
  if (app.error && !app.data) return html`<div class="page"><${ErrorLine} error=${app.error} /></div>`;
  if (!app.data) return html`<div class="page"><div class="empty">loading…</div></div>`;
  const a = app.data.app;
  const rels = (releases.data && releases.data.releases) || [];
  const instances = ((tasks.data && tasks.data.tasks) || []).filter((t) => isInstance(t) && isLive(t));
  return html`<div class="page app-page">
    <div class="crumbs"><${Link} href="/ui/">Apps</${Link}> / ${a.id}</div>
    <div class="page-head"><h1>${a.id}</h1>
      <div class="actions">${ACTIONS.map(([k, label]) => html`<button data-open=${k} onClick=${() => setAction({ kind: k })}>${label}</button>`)}</div></div>
    <${Summary} app=${a} releases=${rels} />
    ${progress && html`<${DeploymentProgress} key=${progress.answer.deploymentId || progress.what} progress=${progress} />`}
    <${Tabs} tabs=${TABS} active=${tab} onSelect=${select} />
    <div class="tab-body">
      ${tab === 'instances' && html`<${InstanceTable} tasks=${instances} height=${480} />`}
      ${tab === 'releases' && html`<${Releases} app=${a} releases=${rels} onDeploy=${(n) => setAction({ kind: 'deploy', initial: n })} />`}
      ${tab === 'spec' && html`<${SpecDiff} app=${a} releases=${rels} />`}
      ${tab === 'logs' && html`<${LogTail} app=${a} />`}
      ${tab === 'metrics' && html`<${AppCharts} app=${a} />`}
      ${tab === 'routes' && html`<${Routes} app=${a} />`}
    </div>
    ${action && html`<${ActionDialogs} action=${action.kind} initial=${action.initial} app=${a} releases=${rels}
      onClose=${(p) => { setAction(null); if (p) { setProgress(p); app.reload(); } }} />`}
  </div>`;
}
