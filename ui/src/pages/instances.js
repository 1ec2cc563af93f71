// The instances table (overview and app page): node, ports, state, health,
// uptime, restarts; virtualised.
import { html } from '../lib/html.js';
import { Badge, Link, VirtualTable } from '../lib/components.js';
import { launches, STATE_KIND, taskHealth } from '../lib/model.js';
import { since } from '../lib/format.js';
import { appPath } from '../lib/api.js';

export function InstanceTable({ tasks, showApp, height = 300 }) {
  const sorted = [...tasks].sort((a, b) => a.appId.localeCompare(b.appId) || a.seq - b.seq || a.id.localeCompare(b.id));
  const columns = [
    ...(showApp ? [{ label: 'app', width: 'minmax(100px,1fr)', render: (t) => html`<${Link} href=${`/ui/apps/${appPath(t.appId)}`}>${t.appId}</${Link}>` }] : []),
    { label: 'instance', width: 'minmax(150px,1fr)', cls: 'mono', render: (t) => html`<span title=${t.message || t.reason || ''}>${t.id}</span>` },
    { label: 'node', width: 'minmax(80px,1fr)', render: (t) => t.host },
    { label: 'ports', width: '90px', cls: 'mono', render: (t) => (t.ports || []).join(', ') },
    { label: 'state', width: '90px', render: (t) => html`<${Badge} kind=${STATE_KIND[t.state]}>${t.state}</${Badge}>` },
    { label: 'health', width: '100px', render: (t) => { const h = taskHealth(t); return html`<${Badge} kind=${STATE_KIND[h]}>${h}</${Badge}>`; } },
    { label: 'release', width: '60px', cls: 'num', render: (t) => `r${t.release}` },
    { label: 'uptime', width: '80px', cls: 'num', render: (t) => (t.state === 'running' ? since(t.startedAt) : '–') },
    { label: 'launches', width: '72px', cls: 'num', render: (t) => html`<span title="launches of this slot so far: restarts and deploys (the task id's last number)">${launches(t)}</span>` },
  ];
  return html`<${VirtualTable} name="instances" columns=${columns} rows=${sorted} rowKey=${(t) => t.id}
    height=${height} empty="no instances running" />`;
}
