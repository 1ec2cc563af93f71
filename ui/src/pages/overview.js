// Overview: apps with health against wanted instances, instances, nodes,
// active deployments, latest events and failing checks; refreshed on events.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { useResource } from '../lib/resource.js';
import { useRefreshOn } from '../lib/live.js';
import { Badge, ErrorLine, Link, Panel, VirtualTable } from '../lib/components.js';
import { appHealth, deploymentLine, HEALTH_KIND, isInstance, isLive } from '../lib/model.js';
import { appPath } from '../lib/api.js';
import { NodeMeters } from './nodes.js';
import { EventList } from './events.js';
import { FailingChecks } from './checks.js';
import { InstanceTable } from './instances.js';

const APP_EVENTS = /^(app_|release_|deployment_|task_|health_|config_)/;

function AppsPanel({ apps, error }) {
  const [filter, setFilter] = useState('');
  const rows = (apps || []).filter((a) => !filter || a.id.includes(filter));
  const columns = [
    { label: 'app', width: 'minmax(140px,2fr)', render: (a) => html`<${Link} href=${`/ui/apps/${appPath(a.id)}`}>${a.id}</${Link}>` },
    { label: 'health', width: '110px', render: (a) => { const h = appHealth(a); return html`<${Badge} kind=${HEALTH_KIND[h]}>${h}</${Badge}>`; } },
    { label: 'instances', width: '150px', cls: 'num', render: (a) => html`<span title="healthy / running / staged of wanted">${a.tasksHealthy} / ${a.tasksRunning}${a.tasksStaged ? ` (+${a.tasksStaged})` : ''} of ${a.instances}</span>` },
    { label: 'release', width: '70px', cls: 'num', render: (a) => (a.release ? `r${a.release}` : '–') },
    { label: 'source', width: 'minmax(120px,1fr)', render: (a) => (a.source ? html`<span class="mono" title=${`${a.source.git} ${a.source.ref} ${a.source.sha}`}>${(a.source.ref || '').replace(/^refs\/heads\//, '')} · ${(a.source.sha || '').slice(0, 8)}</span>` : '–') },
    { label: 'deployment', width: 'minmax(160px,2fr)', render: (a) => (a.deployment ? html`<${Badge} kind="info">${deploymentLine(a.deployment)}</${Badge}>` : a.waiting ? html`<span class="warn-text" title=${a.waiting}>waiting: ${a.waiting}</span>` : '') },
  ];
  return html`<${Panel} title=${`Apps (${(apps || []).length})`} id="apps"
      right=${html`<input type="search" placeholder="filter apps" value=${filter} onInput=${(e) => setFilter(e.target.value)} />`}>
    <${ErrorLine} error=${error} />
    <${VirtualTable} name="apps" columns=${columns} rows=${rows} rowKey=${(a) => a.id} height=${360}
      empty=${apps ? 'no apps yet: stele create NAME, then git push' : 'loading…'} />
  </${Panel}>`;
}

function DeploymentsPanel({ deployments }) {
  const list = deployments || [];
  return html`<${Panel} title=${`Active deployments (${list.length})`} id="deployments">
    ${list.length === 0 ? html`<div class="empty">none running</div>` : html`<table class="grid">
      <thead><tr><th>app</th><th>kind</th><th>releases</th><th>instances</th><th>step</th></tr></thead>
      <tbody>${list.map((d) => html`<tr key=${d.id}>
        <td><${Link} href=${`/ui/apps/${appPath(d.appId)}`}>${d.appId}</${Link}></td><td>${d.kind}</td>
        <td>r${d.fromRelease} → r${d.toRelease}</td><td>${d.fromInstances} → ${d.toInstances}</td>
        <td><${Badge} kind="info">${d.step || d.status}</${Badge}></td></tr>`)}</tbody></table>`}
  </${Panel}>`;
}

export function Overview() {
  const apps = useResource('/api/v1/apps');
  const tasks = useResource('/api/v1/tasks');
  const nodes = useResource('/api/v1/nodes');
  const deps = useResource('/api/v1/deployments');
  useRefreshOn((e) => APP_EVENTS.test(e.type), () => { apps.reload(); deps.reload(); }, 500);
  useRefreshOn((e) => /^(task_|health_)/.test(e.type), tasks.reload, 1000);
  useRefreshOn((e) => /^(node_|task_status)/.test(e.type), nodes.reload, 2000);
  const instances = ((tasks.data && tasks.data.tasks) || []).filter((t) => isInstance(t) && isLive(t));
  return html`<div class="page overview">
    <div class="cols">
      <div class="col-main">
        <${AppsPanel} apps=${apps.data && apps.data.apps} error=${apps.error} />
        <${Panel} title=${`Instances (${instances.length})`} id="instances">
          <${ErrorLine} error=${tasks.error} />
          <${InstanceTable} tasks=${instances} showApp=${true} height=${300} />
        </${Panel}>
        <${DeploymentsPanel} deployments=${deps.data && deps.data.deployments} />
      </div>
      <div class="col-side">
        <${Panel} title="Nodes" id="nodes"><${ErrorLine} error=${nodes.error} />
          <${NodeMeters} nodes=${(nodes.data && nodes.data.nodes) || []} /></${Panel}>
        <${FailingChecks} />
        <${Panel} title="Latest events" id="events" right=${html`<${Link} href="/ui/events">all events</${Link}>`}>
          <${EventList} limit=${14} compact=${true} /></${Panel}>
      </div>
    </div>
  </div>`;
}
