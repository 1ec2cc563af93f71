// The dashboard's shell: navigation, the live indicator, the token prompt
// and the page for the current /ui/ path.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { html } from './lib/html.js';
import { setToken, setTokenPrompt, token } from './lib/api.js';
import { startLive, useLiveStatus } from './lib/live.js';
import { Dialog, Link } from './lib/components.js';
import { useLocation } from './lib/router.js';
import { Overview } from './pages/overview.js';
import { AppPage } from './pages/app.js';
import { Nodes } from './pages/nodes.js';
import { Checks } from './pages/checks.js';
import { Metrics } from './pages/metrics.js';
import { Events } from './pages/events.js';

const NAV = [['/ui/', 'Overview'], ['/ui/nodes', 'Nodes'], ['/ui/checks', 'Checks'], ['/ui/metrics', 'Metrics'], ['/ui/events', 'Events']];

function page(path) {
  const rest = path.replace(/^\/ui\/?/, '').replace(/\/+$/, '');
  if (rest.startsWith('apps/')) return [html`<${AppPage} key=${rest} id=${`/${decodeURIComponent(rest.slice(5))}`} />`, '/ui/'];
  switch (rest) {
    case 'nodes': return [html`<${Nodes} />`, '/ui/nodes'];
    case 'checks': return [html`<${Checks} />`, '/ui/checks'];
    case 'metrics': return [html`<${Metrics} />`, '/ui/metrics'];
    case 'events': return [html`<${Events} />`, '/ui/events'];
    default: return [html`<${Overview} />`, '/ui/'];
  }
}

// Asked for when a mutating call answers 401; resolves with the token or null.
function TokenDialog({ onDone }) {
  const [value, setValue] = useState('');
  return html`<${Dialog} title="API token required" onClose=${() => onDone(null)}>
    <form class="form" onSubmit=${(e) => { e.preventDefault(); onDone(value.trim() || null); }}>
      <p>This server requires a token for changes. <code>stele up</code> writes it to <code>${"<data-dir>/token"}</code>.
        It is kept for this browser session only.</p>
      <label>token <input name="token" type="password" class="mono" value=${value} onInput=${(e) => setValue(e.target.value)} autofocus /></label>
      <footer><button type="button" onClick=${() => onDone(null)}>Cancel</button><button class="primary">Use token</button></footer>
    </form></${Dialog}>`;
}

function Shell() {
  const loc = useLocation();
  const live = useLiveStatus();
  const [asking, setAsking] = useState(null);
  const [hasToken, setHasToken] = useState(!!token());
  useEffect(() => {
    setTokenPrompt(() => new Promise((resolve) => setAsking(() => resolve)));
    startLive();
  }, []);
  const [content, active] = page(loc.path);
  const done = (t) => { asking(t); setAsking(null); setHasToken(!!t || !!token()); };
  return html`<div class="shell">
    <header class="top">
      <${Link} href="/ui/" cls="brand"><span class="logo">▮</span> Stele</${Link}>
      <nav>${NAV.map(([href, label]) => html`<${Link} href=${href} cls=${href === active ? 'active' : ''}>${label}</${Link}>`)}</nav>
      <div class="spacer"></div>
      ${hasToken && html`<button class="small ghost" onClick=${() => { setToken(''); setHasToken(false); }} title="forget the API token">forget token</button>`}
      <span class=${`live ${live}`} data-live=${live} title="event stream">${live}</span>
    </header>
    <main>${content}</main>
    ${asking && html`<${TokenDialog} onDone=${done} />`}
  </div>`;
}

render(html`<${Shell} />`, document.getElementById('root'));
