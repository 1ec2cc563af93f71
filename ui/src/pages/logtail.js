// Live log tail of an app: /api/v1/logs?follow=1 (SSE; the backlog first,
// then new records), filtered on the server by grep and stream/tag. Keeps the
// newest lines; sticks to the bottom unless scrolled up.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { appName, query } from '../lib/api.js';
import { clock } from '../lib/format.js';

const KEEP = 1000;
const SOURCES = [['', 'all output'], ['stdout', 'stdout'], ['stderr', 'stderr'], ['access', 'router access'], ['pipeline', 'pipeline']];

function streamParams(app, source) {
  if (source === 'stdout' || source === 'stderr') return { app: app.id, stream: source };
  if (source) return { tag: `stele.${appName(app.id)}.${source}` };
  return { app: app.id };
}

export function LogTail({ app }) {
  const [grep, setGrep] = useState('');
  const [applied, setApplied] = useState('');
  const [source, setSource] = useState('');
  const [lines, setLines] = useState([]);
  const [status, setStatus] = useState('connecting');
  const box = useRef(null);
  const stick = useRef(true);

  useEffect(() => {
    setLines([]);
    setStatus('connecting');
    const es = new EventSource(`/api/v1/logs?${query({ follow: 1, limit: 200, grep: applied, ...streamParams(app, source) })}`);
    let buf = [];
    let timer = null;
    const flush = () => {
      timer = null;
      const add = buf;
      buf = [];
      setLines((l) => { const n = l.concat(add); return n.length > KEEP ? n.slice(n.length - KEEP) : n; });
    };
    es.onopen = () => setStatus('following');
    es.onmessage = (m) => {
      try { buf.push(JSON.parse(m.data)); } catch (_) { return; }
      if (!timer) timer = setTimeout(flush, 100);
    };
    es.addEventListener('error', (m) => {
      if (m.data) { try { setStatus(`error: ${JSON.parse(m.data).message}`); } catch (_) { setStatus('error'); } }
      else setStatus(es.readyState === EventSource.CLOSED ? 'closed (the server has no log store?)' : 'reconnecting');
    });
    return () => { es.close(); if (timer) clearTimeout(timer); };
  }, [app.id, applied, source]);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  const onScroll = (e) => {
    const el = e.currentTarget;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
  };
  return html`<div class="logtail">
    <form class="filters" onSubmit=${(e) => { e.preventDefault(); setApplied(grep); }}>
      <input type="search" name="grep" class="mono" placeholder="grep (substring, on the server)" value=${grep}
        onInput=${(e) => setGrep(e.target.value)} />
      <select aria-label="source" value=${source} onChange=${(e) => setSource(e.target.value)}>
        ${SOURCES.map(([k, label]) => html`<option value=${k}>${label}</option>`)}</select>
      <button>Apply</button>
      <span class="muted small" data-tail-status=${status}>${status} · ${lines.length} lines</span>
    </form>
    <div class="log lines" ref=${box} onScroll=${onScroll} data-log-lines=${lines.length}>
      ${lines.map((l) => {
        const r = l.record || {};
        const text = typeof r.log === 'string' ? r.log : JSON.stringify(r);
        return html`<div class=${`line ${r.stream || ''}`} key=${l.seq}><span class="time">${clock(l.time)}</span>
          <span class="task">${r.task || l.tag}</span><span class="text">${text}</span></div>`;
      })}
      ${lines.length === 0 && html`<div class="empty">no lines yet${applied ? ` matching "${applied}"` : ''}</div>`}
    </div></div>`;
}
