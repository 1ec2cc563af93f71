// An app's charts: cpu and memory per instance (the agents' cgroup metrics),
// request rate, error ratio and latency (log-derived, design.md "Names").
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { appName } from '../lib/api.js';
import { Chart, RANGES } from '../lib/chart.js';
import { bytes, percent } from '../lib/format.js';
import { param, setParam } from '../lib/router.js';

export function AppCharts({ app }) {
  const [from, setFrom] = useState(param('from') || '-15min');
  const n = appName(app.id);
  const req = `stele.app.${n}.requests`;
  const none = `no request metrics yet: they are counted every 10 s from routed requests, or from the app's stdout with a spec "accessLog"`;
  return html`<div class="filters"><label class="muted">range <select aria-label="range" value=${from}
      onChange=${(e) => { setFrom(e.target.value); setParam('from', e.target.value); }}>
      ${RANGES.map((r) => html`<option value=${r}>last ${r.slice(1)}</option>`)}</select></label></div>
    <div class="charts">
    <${Chart} title="CPU (cores)" from=${from} targets=${[`aliasByNode(perSecond(stele.task.*.${n}-r*.*.cpu.usage),3,4)`]} />
    <${Chart} title="Memory (RSS)" from=${from} targets=${[`aliasByNode(stele.task.*.${n}-r*.*.memory.rss,3,4)`]} fmt=${bytes} zero=${false} />
    <${Chart} title="Requests per second" none=${none} from=${from} targets=${[`alias(scale(${req}.count,0.1),'req/s')`]} />
    <${Chart} title="Error ratio (5xx / all)" none=${none} from=${from} targets=${[`alias(${req}.error_ratio,'error ratio')`]} fmt=${percent} />
    <${Chart} title="Latency (ms)" none=${none} from=${from} targets=${[`aliasByNode(${req}.latency.*,5)`]} />
  </div>`;
}
