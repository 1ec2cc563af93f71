// Nodes: resources used vs offered (cpu, memory, disk, ports), state, heartbeat.
import { html } from '../lib/html.js';
import { useResource } from '../lib/resource.js';
import { useRefreshOn } from '../lib/live.js';
import { Badge, ErrorLine, Meter, Panel, VirtualTable } from '../lib/components.js';
import { ago, mb, num } from '../lib/format.js';
import { STATE_KIND } from '../lib/model.js';

export const portsOffered = (n) => (n.ports || []).reduce((s, [b, e]) => s + (e - b + 1), 0);
const usedPorts = (n) => (n.usedPorts || []).length;

export function NodeMeters({ nodes }) {
  if (nodes.length === 0) return html`<div class="empty">no agents registered</div>`;
  return html`<div class="node-meters">${nodes.map((n) => html`<div class="node" key=${n.id} data-node=${n.hostname}>
    <div class="node-name"><b>${n.hostname}</b> <span class="muted">${n.address}</span>
      <${Badge} kind=${STATE_KIND[n.state]}>${n.state}</${Badge}></div>
    <div class="meters">
      <label>cpu</label><${Meter} used=${n.used.cpus} total=${n.resources.cpus} label=${`${num(n.used.cpus)} / ${num(n.resources.cpus)}`} />
      <label>mem</label><${Meter} used=${n.used.mem} total=${n.resources.mem} label=${`${mb(n.used.mem)} / ${mb(n.resources.mem)}`} />
      <label>ports</label><${Meter} used=${usedPorts(n)} total=${portsOffered(n)} label=${`${usedPorts(n)} / ${portsOffered(n)}`} />
    </div></div>`)}</div>`;
}

export function Nodes() {
  const res = useResource('/api/v1/nodes');
  useRefreshOn((e) => /^(node_|task_status)/.test(e.type), res.reload, 1000);
  const nodes = (res.data && res.data.nodes) || [];
  const columns = [
    { label: 'node', width: 'minmax(120px,1fr)', render: (n) => html`<b>${n.hostname}</b>` },
    { label: 'address', width: '120px', cls: 'mono', render: (n) => n.address },
    { label: 'state', width: '80px', render: (n) => html`<${Badge} kind=${STATE_KIND[n.state]}>${n.state}</${Badge}>` },
    { label: 'cpu', width: 'minmax(120px,1fr)', render: (n) => html`<${Meter} used=${n.used.cpus} total=${n.resources.cpus} label=${`${num(n.used.cpus)} / ${num(n.resources.cpus)}`} />` },
    { label: 'memory', width: 'minmax(140px,1fr)', render: (n) => html`<${Meter} used=${n.used.mem} total=${n.resources.mem} label=${`${mb(n.used.mem)} / ${mb(n.resources.mem)}`} />` },
    { label: 'disk', width: 'minmax(140px,1fr)', render: (n) => html`<${Meter} used=${n.used.disk} total=${n.resources.disk} label=${`${mb(n.used.disk)} / ${mb(n.resources.disk)}`} />` },
    { label: 'ports', width: 'minmax(120px,1fr)', render: (n) => html`<${Meter} used=${usedPorts(n)} total=${portsOffered(n)} label=${`${usedPorts(n)} / ${portsOffered(n)} (${(n.ports || []).map(([b, e]) => `${b}-${e}`).join(',')})`} />` },
    { label: 'attributes', width: 'minmax(100px,1fr)', cls: 'muted', render: (n) => Object.entries(n.attributes || {}).map(([k, v]) => `${k}=${v}`).join(' ') },
    { label: 'heartbeat', width: '90px', cls: 'num', render: (n) => ago(n.lastHeartbeat) },
  ];
  return html`<div class="page">
    <${Panel} title=${`Nodes (${nodes.length})`}>
      <${ErrorLine} error=${res.error} />
      <${VirtualTable} name="nodes" columns=${columns} rows=${nodes} rowKey=${(n) => n.id} height=${600}
        empty=${res.data ? 'no agents registered' : 'loading…'} />
    </${Panel}></div>`;
}
