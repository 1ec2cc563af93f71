// The dashboard end to end: Playwright (playwright-core) drives Debian's
// Chromium, headless, against a real `stele up` that
// tests/integration/test_dashboard.py started with examples/hello pushed
// twice. Each step prints "ok - <step>" or "not ok - <step>: <why>" and saves
// a screenshot; the first failure ends the run (exit 1).
//
// Environment: STELE_URL, STELE_APP (/hello), STELE_OLD_RELEASE and
// STELE_NEW_RELEASE (the new one serves STELE_NEW_MARKER), STELE_UI_ARTIFACTS
// (screenshot dir), CHROMIUM (default /usr/bin/chromium), STELE_UI_STEPS (a
// regex: run only the steps whose names match, when working on the UI).
import { launchChromium } from './browser.mjs';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.STELE_URL;
const appId = process.env.STELE_APP || '/hello';
const appUrl = `/ui/apps/${appId.replace(/^\//, '')}`;
const oldRelease = Number(process.env.STELE_OLD_RELEASE);
const newMarker = process.env.STELE_NEW_MARKER;
const artifacts = process.env.STELE_UI_ARTIFACTS || 'build/test-artifacts/ui';
mkdirSync(artifacts, { recursive: true });
// Only this run's screenshots (a FAILED one of an earlier run would mislead).
for (const f of readdirSync(artifacts)) if (f.endsWith('.png')) rmSync(join(artifacts, f));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(250);
  }
}
async function api(path, init) {
  const res = await fetch(base + path, init);
  const text = await res.text();
  return { status: res.status, doc: text ? JSON.parse(text) : null };
}
const instancesOf = async () => (await api(`/api/v1/apps${appId}/tasks`)).doc.tasks
  .filter((t) => !/\.(build|test|smoke|release|run)\./.test(t.id) && t.state === 'running' && t.healthy);
async function pageOf(task) {
  const res = await fetch(`http://127.0.0.1:${task.ports[0]}/`);
  return res.text();
}

const userDir = mkdtempSync(join(tmpdir(), 'stele-ui-chromium-'));
const context = await launchChromium(userDir);
const page = context.pages()[0] || await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));

let shot = 0;
const screenshot = (name) => page.screenshot({ path: join(artifacts, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
const rows = (table) => page.locator(`[data-table="${table}"] .vrow`);
async function openTab(name) {
  if (!new URL(page.url()).pathname.startsWith(appUrl)) {
    await page.goto(base + appUrl);
    await page.locator('.app-page h1').waitFor();
  }
  await page.click(`.tabs [data-tab="${name}"]`);
}

// Through the top navigation (a client-side route change, no reload).
async function nav(href) {
  if (!page.url().startsWith(base)) await page.goto(`${base}/ui/`);
  await page.click(`.top nav a[href="${href}"]`);
}

const steps = [];
const step = (name, fn) => steps.push([name, fn]);

step('/ redirects to the overview, which lists the app and its 2 instances', async () => {
  await page.goto(base + '/');
  if (!page.url().endsWith('/ui/')) throw new Error(`landed on ${page.url()}`);
  await page.locator(`[data-table="apps"] .vrow[data-key="${appId}"]`).waitFor();
  await page.locator('[data-table="instances"][data-rows="2"]').waitFor();
  const text = await rows('instances').allInnerTexts();
  if (!text.every((t) => t.includes(appId) && t.includes('running'))) throw new Error(`instances: ${text.join(' | ')}`);
  await page.locator('[data-live="live"]').waitFor();
  await page.locator('[data-node]').first().waitFor();
  await screenshot('overview');
});

step('the overview in dark mode', async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await sleep(300);
  await screenshot('overview-dark');
  await page.emulateMedia({ colorScheme: 'light' });
});

step('an invalid scale (-1) shows the API\'s message', async () => {
  const expected = await api(`/api/v1/apps${appId}/scale`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ instances: -1 }) });
  if (expected.status < 400) throw new Error(`the API accepted scale -1: ${JSON.stringify(expected.doc)}`);
  await page.click(`[data-table="apps"] .vrow[data-key="${appId}"] a`);
  await page.locator('.app-page h1').waitFor();
  await page.click('[data-open="scale"]');
  await page.fill('dialog input[name="instances"]', '-1');
  await page.click('dialog [data-confirm="Scale"]');
  const err = page.locator('dialog .error');
  await err.waitFor();
  const shown = await err.innerText();
  if (!shown.includes(expected.doc.message)) throw new Error(`dialog says "${shown}", the API "${expected.doc.message}"`);
  await screenshot('scale-invalid');
});

step('scaling to 3 from the UI makes three instances appear', async () => {
  await page.fill('dialog input[name="instances"]', '3');
  await page.click('dialog [data-confirm="Scale"]');
  await page.locator('dialog').waitFor({ state: 'detached' });
  await page.locator('[data-progress]').waitFor();
  await page.locator('[data-progress="succeeded"]').waitFor({ timeout: 60000 });
  await page.locator('[data-table="instances"][data-rows="3"]').waitFor({ timeout: 30000 });
  const healthyRows = async () => (await rows('instances').allInnerTexts()).filter((t) => /(^|\s)healthy(\s|$)/.test(t)).length;
  await waitFor(async () => (await healthyRows()) === 3, 30000, 'three healthy instances in the table');
  await page.locator('.summary [data-field="instances"]', { hasText: '3 healthy' }).waitFor();
  await screenshot('app-scaled');
});

step('the log tail shows a line the app just printed', async () => {
  await openTab('logs');
  await page.locator('[data-tail-status="following"]').waitFor();
  const marker = `/ui-test-marker-${Date.now()}`;
  const [task] = await instancesOf();
  await fetch(`http://127.0.0.1:${task.ports[0]}${marker}`);
  await page.locator('.log.lines .line', { hasText: marker }).first().waitFor({ timeout: 30000 });
  await page.fill('input[name="grep"]', marker);
  await page.press('input[name="grep"]', 'Enter');
  await waitFor(async () => {
    const lines = await page.locator('.log.lines .line').allInnerTexts();
    return lines.length > 0 && lines.every((l) => l.includes(marker));
  }, 15000, 'only the marker line after grep');
  await screenshot('app-logs');
});

step('releases with their pipeline output, and the spec diff', async () => {
  await openTab('releases');
  await waitFor(async () => (await rows('releases').count()) >= 2, 10000, 'two releases');
  await page.locator('[data-release-log]').filter({ hasText: /build|test|smoke/i }).waitFor();
  await screenshot('app-releases');
  await openTab('spec');
  await page.locator('.spec .dadd, .spec .ddel').first().waitFor();
  await screenshot('app-spec-diff');
  await openTab('routes');
  await page.locator('td', { hasText: 'hello.localhost' }).waitFor();
  await screenshot('app-routes');
});

step('a rollback from the UI changes the served content', async () => {
  const before = await instancesOf();
  if (!(await pageOf(before[0])).includes(newMarker)) throw new Error('the new release does not serve its marker');
  const wanted = (await api(`/api/v1/apps${appId}`)).doc.app.instances;
  await openTab('instances');
  await page.click('[data-open="rollback"]');
  await page.selectOption('dialog select[name="release"]', String(oldRelease));
  await screenshot('rollback-dialog');
  await page.click('dialog [data-confirm="Rollback"]');
  await page.locator('[data-progress]').waitFor();
  await page.locator('[data-progress="succeeded"]').waitFor({ timeout: 90000 });
  await waitFor(async () => {
    const ts = await instancesOf();
    if (ts.length !== wanted || ts.some((t) => t.release !== oldRelease)) return false;
    const pages = await Promise.all(ts.map(pageOf));
    return pages.every((p) => !p.includes(newMarker) && p.includes(`release ${oldRelease}`));
  }, 60000, `${wanted} instances of r${oldRelease} serving the old page`);
  await openTab('instances');
  await screenshot('app-rolled-back');
});

step('deploying a release from the releases tab serves it again', async () => {
  const newRelease = Number(process.env.STELE_NEW_RELEASE);
  const wanted = (await api(`/api/v1/apps${appId}`)).doc.app.instances;
  await openTab('releases');
  await page.click(`[data-deploy="${newRelease}"]`);
  const chosen = await page.locator('dialog select[name="release"]').inputValue();
  if (chosen !== String(newRelease)) throw new Error(`the dialog preselected r${chosen}`);
  await page.click('dialog [data-confirm="Deploy"]');
  await page.locator(`[data-progress="succeeded"][data-release="${newRelease}"]`).waitFor({ timeout: 90000 });
  await waitFor(async () => {
    const ts = await instancesOf();
    if (ts.length !== wanted || ts.some((t) => t.release !== newRelease)) return false;
    return (await Promise.all(ts.map(pageOf))).every((p) => p.includes(newMarker));
  }, 60000, `${wanted} instances of r${newRelease} serving its page`);
  await screenshot('app-deployed');
});

step('with a token required, the UI asks for it and sends it', async () => {
  let calls = 0;
  let auth = null;
  await page.route('**/api/v1/apps/**/restart', async (route) => {
    calls += 1;
    if (calls === 1) return route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ message: 'a valid token is required' }) });
    auth = route.request().headers().authorization;
    return route.fulfill({ status: 200, contentType: 'application/json', body: '{"deploymentId": null}' });
  });
  await openTab('instances');
  await page.click('[data-open="restart"]');
  await page.click('dialog [data-confirm="Restart"]');
  await page.locator('dialog input[name="token"]').waitFor();
  await screenshot('token-prompt');
  await page.fill('dialog input[name="token"]', 'ui-test-token');
  await page.press('dialog input[name="token"]', 'Enter');
  await page.locator('[data-progress="nothing to do"]').waitFor();
  if (auth !== 'Bearer ui-test-token') throw new Error(`retried with Authorization ${auth}`);
  const kept = await page.evaluate(() => sessionStorage.getItem('stele.token'));
  if (kept !== 'ui-test-token') throw new Error(`sessionStorage holds ${kept}`);
  await page.unroute('**/api/v1/apps/**/restart');
  await page.click('button[title="forget the API token"]');
});

step('a config change from the UI makes a release and rolls it out', async () => {
  await openTab('instances');
  const before = (await api(`/api/v1/apps${appId}`)).doc.app.release;
  await page.click('[data-open="config"]');
  await page.click('dialog button:has-text("Add variable")');
  const i = (await page.locator('dialog input[name^="key-"]').count()) - 1;
  await page.fill(`dialog input[name="key-${i}"]`, 'UI_TEST');
  await page.fill(`dialog input[name="value-${i}"]`, 'set from the dashboard');
  await screenshot('config-dialog');
  await page.click('dialog [data-confirm="Save and deploy"]');
  await page.locator('[data-progress="succeeded"]').waitFor({ timeout: 90000 });
  const app = (await api(`/api/v1/apps${appId}`)).doc.app;
  if (app.release <= before) throw new Error(`still release ${app.release}`);
  const rel = (await api(`/api/v1/apps${appId}/releases/${app.release}`)).doc.release;
  if (rel.cause !== 'config' || !('UI_TEST' in rel.config)) throw new Error(`release ${JSON.stringify(rel)}`);
});

step('the charts draw points', async () => {
  await openTab('metrics');
  const mem = page.locator('[data-chart="Memory (RSS)"]');
  // A few samples per instance (the agent collects every second here), so lines show.
  await waitFor(async () => Number(await mem.getAttribute('data-points')) >= 12, 60000, 'memory points');
  await mem.locator('canvas').waitFor();
  await waitFor(async () => Number(await page.locator('[data-chart="CPU (cores)"]').getAttribute('data-points')) > 0,
    30000, 'cpu points');
  await screenshot('app-metrics');
});

step('nodes page', async () => {
  await nav('/ui/nodes');
  await waitFor(async () => (await rows('nodes').count()) >= 1, 10000, 'a node row');
  await screenshot('nodes');
});

step('checks page: a check silenced from the UI shows as silenced', async () => {
  await nav('/ui/checks');
  await page.locator('[data-unavailable="checks"], [data-table="checks"] .vrow').first().waitFor();
  if (await page.locator('[data-unavailable="checks"]').count()) {
    console.log('# checks: not available on this server yet (the page says so)');
    await screenshot('checks');
    return;
  }
  const button = page.locator('[data-silence]').first();
  const which = await button.getAttribute('data-silence');
  await button.click();
  await page.fill('dialog input[name="minutes"]', '30');
  await screenshot('checks-silence-dialog');
  await page.click('dialog [data-confirm="Silence"]');
  await page.locator('dialog').waitFor({ state: 'detached' });
  await page.locator(`[data-table="checks"] .vrow[data-key="${which}"]`, { hasText: 'silenced' }).waitFor();
  const silences = (await api('/api/v1/silences')).doc;
  if (!JSON.stringify(silences).includes(`entity:${which.split('/')[0]}`)) throw new Error(`silences: ${JSON.stringify(silences)}`);
  await screenshot('checks');
});

step('metrics explorer: find-as-you-type and a chart', async () => {
  await nav('/ui/metrics');
  const input = page.locator('input[name="target"]');
  await input.fill('');
  await input.pressSequentially('stele.no');
  await page.locator('.suggestions li', { hasText: 'stele.node' }).first().waitFor();
  await screenshot('metrics-completion');
  await input.fill('stele.node.*.memory.*');
  await page.keyboard.press('Escape');
  await page.click('.explorer button.primary');
  const chart = page.locator('.chart');
  await waitFor(async () => Number(await chart.getAttribute('data-points')) > 0, 30000, 'points in the explorer chart');
  await screenshot('metrics-explorer');
});

step('events page, filtered by type', async () => {
  await nav('/ui/events');
  await waitFor(async () => (await rows('events').count()) > 5, 10000, 'events');
  await page.selectOption('select[aria-label="type"]', 'deployment_succeeded');
  await waitFor(async () => {
    const t = await rows('events').allInnerTexts();
    return t.length > 0 && t.every((x) => x.includes('deployment_succeeded'));
  }, 10000, 'only deployment_succeeded rows');
  await screenshot('events');
});

let failed = false;
const only = process.env.STELE_UI_STEPS ? new RegExp(process.env.STELE_UI_STEPS) : null;
for (const [name, fn] of steps.filter(([n]) => !only || only.test(n))) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed = true;
    console.log(`not ok - ${name}: ${e.message}`);
    await screenshot('FAILED').catch(() => {});
    break;
  }
}
if (consoleErrors.length) console.log(`# browser console errors:\n#   ${consoleErrors.join('\n#   ')}`);
await context.close();
rmSync(userDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
