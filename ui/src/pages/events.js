// Events: the one stream, newest first, filterable by type and app. The
// backlog comes from /api/v1/events; new ones from the page's EventSource.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { get, query, appPath } from '../lib/api.js';
import { subscribe, EVENT_TYPES, RESUMED } from '../lib/live.js';
import { Badge, ErrorLine, Link, Panel, VirtualTable } from '../lib/components.js';
import { clock, stamp } from '../lib/format.js';
import { param, setParam } from '../lib/router.js';

const KEEP = 2000;

function kindOf(type) {
  if (/failed|lost|unhealthy|deleted/.test(type)) return 'bad';
  if (/succeeded|ready|registered/.test(type)) return 'ok';
  if (/deployment|release_/.test(type)) return 'info';
  return '';
}

// One line of the event's own fields (after the envelope), most telling first.
const NOISE = new Set(['id', 'type', 'time', 'app', 'actor', 'deployment', 'agentId', 'health', 'ports', 'node']);
export function eventSummary(e) {
  const parts = [];
  const d = e.deployment;
  if (d) parts.push(`${d.kind} r${d.fromRelease}→r${d.toRelease} ${d.step || d.status}${d.reason ? `: ${d.reason}` : ''}`);
  if (e.node && typeof e.node === 'object') parts.push(`${e.node.hostname || e.node.id} ${e.node.address || ''}`);
  else if (e.node) parts.push(String(e.node));
  if (e.task) parts.push(e.task);
  if (e.state) parts.push(e.state);
  for (const [k, v] of Object.entries(e)) {
    if (NOISE.has(k) || k === 'task' || k === 'state' || v === '' || v === null || v === undefined) continue;
    parts.push(`${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`);
  }
  return parts.join(' ');
}

// The newest events matching the filters: backlog + live, newest first.
export function useEvents({ type, app: rawApp, limit }) {
  const app = rawApp && !rawApp.startsWith('/') ? `/${rawApp}` : rawApp;
  const [state, setState] = useState({ events: [], error: null });
  useEffect(() => {
    let alive = true;
    setState({ events: [], error: null });
    const match = (e) => (!type || e.type === type) && (!app || e.app === app);
    const off = subscribe((e) => {
      if (e.type === RESUMED || !match(e)) return;
      if (!alive) return;
      setState((s) => ({ ...s, events: merge(s.events, [e], limit) }));
    });
    get(`/api/v1/events?${query({ type, app, limit })}`).then(
      (doc) => alive && setState((s) => ({ error: null, events: merge(s.events, doc.events, limit) })),
      (error) => alive && setState((s) => ({ ...s, error })));
    return () => { alive = false; off(); };
  }, [type, app, limit]);
  return state;
}

function merge(have, more, limit) {
  const byId = new Map(have.map((e) => [e.id, e]));
  for (const e of more) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => b.id - a.id).slice(0, Math.min(limit, KEEP));
}

export function EventList({ limit = 20, compact, app, type }) {
  const { events, error } = useEvents({ limit, app, type });
  if (compact) {
    return html`<${ErrorLine} error=${error} /><ul class="events compact">${events.map((e) => html`<li key=${e.id}>
      <span class="time">${clock(e.time)}</span> <${Badge} kind=${kindOf(e.type)}>${e.type}</${Badge}>
      ${e.app ? html` <${Link} href=${`/ui/apps/${appPath(e.app)}`}>${e.app}</${Link}>` : ''}
      <span class="muted"> ${eventSummary(e)}</span></li>`)}
      ${events.length === 0 ? html`<li class="empty">no events yet</li>` : ''}</ul>`;
  }
  const columns = [
    { label: 'id', width: '60px', cls: 'num muted', render: (e) => e.id },
    { label: 'time', width: '150px', cls: 'mono', render: (e) => stamp(e.time) },
    { label: 'type', width: '170px', render: (e) => html`<${Badge} kind=${kindOf(e.type)}>${e.type}</${Badge}>` },
    { label: 'app', width: 'minmax(80px,0.6fr)', render: (e) => (e.app ? html`<${Link} href=${`/ui/apps/${appPath(e.app)}`}>${e.app}</${Link}>` : '') },
    { label: 'details', width: 'minmax(200px,3fr)', cls: 'mono small', render: (e) => html`<span title=${JSON.stringify(e)}>${eventSummary(e)}</span>` },
    { label: 'actor', width: 'minmax(80px,0.6fr)', cls: 'muted small', render: (e) => e.actor || '' },
  ];
  return html`<${ErrorLine} error=${error} /><${VirtualTable} name="events" columns=${columns} rows=${events}
    rowKey=${(e) => e.id} height=${640} empty="no events match" />`;
}

export function Events() {
  const [type, setType] = useState(param('type') || '');
  const [app, setApp] = useState(param('app') || '');
  const change = (key, set) => (e) => { set(e.target.value); setParam(key, e.target.value); };
  return html`<div class="page">
    <${Panel} title="Events" right=${html`<div class="filters">
        <select aria-label="type" value=${type} onChange=${change('type', setType)}>
          <option value="">all types</option>${EVENT_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}</select>
        <input type="search" aria-label="app" placeholder="app id, e.g. /hello" value=${app}
          onChange=${change('app', setApp)} /></div>`}>
      <${EventList} limit=${1000} type=${type} app=${app} />
    </${Panel}></div>`;
}
