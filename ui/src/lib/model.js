// What the UI derives from the API's records (docs/api.md shapes).

// Pipeline step tasks (build, test, smoke, release, run) are not instances.
const STEP = /\.(build|test|smoke|release|run)\./;
export const isInstance = (t) => !STEP.test(t.id);
export const LIVE_STATES = new Set(['staging', 'starting', 'running', 'killing']);
export const isLive = (t) => LIVE_STATES.has(t.state);

// Task ids end in ".<n>", n = launches of that slot so far, restarts and
// deploys alike (design.md "Names"); the API has no restart count of its own.
export function launches(t) {
  const m = /\.(\d+)$/.exec(t.id);
  return m ? Number(m[1]) : 0;
}

// healthy | unhealthy | staged | deploying, against the wanted instances.
export function appHealth(a) {
  if (a.deployment) return 'deploying';
  if (a.tasksStaged > 0) return 'staged';
  const checked = ((a.spec && a.spec.healthChecks) || []).length > 0;
  const good = checked ? a.tasksHealthy : a.tasksRunning;
  if (good >= a.instances && !a.tasksUnhealthy && a.tasksRunning >= a.instances) return 'healthy';
  return 'unhealthy';
}

export const HEALTH_KIND = { healthy: 'ok', unhealthy: 'bad', staged: 'warn', deploying: 'info' };

export function taskHealth(t) {
  if (t.state !== 'running') return t.state;
  if (!t.health || t.health.length === 0) return t.healthy ? 'healthy' : 'no result';
  return t.healthy ? 'healthy' : 'unhealthy';
}

export const STATE_KIND = {
  running: 'ok', staging: 'warn', starting: 'warn', killing: 'warn', finished: '', killed: '',
  failed: 'bad', lost: 'bad', healthy: 'ok', unhealthy: 'bad', ready: 'ok', building: 'info',
  testing: 'info', succeeded: 'ok', canceled: 'warn', active: 'ok', passing: 'ok', failing: 'bad',
  flapping: 'warn', 'no result': '',
};

export function deploymentLine(d) {
  if (!d) return '';
  const to = d.toRelease ? ` → r${d.toRelease}` : '';
  const inst = d.kind === 'scale' ? ` ${d.fromInstances}→${d.toInstances}` : '';
  return `${d.kind}${to}${inst}: ${d.step || d.status}`;
}

// Check status 0-3 (Nagios).
export const CHECK_STATUS = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'];
export const CHECK_KIND = ['ok', 'warn', 'bad', 'info'];

// The checks API answer's rows whatever its envelope ({states}, {checks}, [..]).
export function checkRows(doc) {
  if (Array.isArray(doc)) return doc;
  if (!doc || typeof doc !== 'object') return [];
  for (const k of ['states', 'status', 'checks', 'results']) if (Array.isArray(doc[k])) return doc[k];
  return [];
}

export function checkOf(row) {
  const c = row.check && typeof row.check === 'object' ? row.check : row;
  return {
    entity: row.entity || c.entity || '',
    name: c.name || row.name || (typeof row.check === 'string' ? row.check : ''),
    status: Number(c.status ?? row.status ?? 3),
    output: c.output || row.output || '',
    occurrences: row.occurrences ?? '',
    silenced: !!(row.silenced || c.silenced),
    executed: c.executed || row.executed,
  };
}
