// The overview at scale, in Debian's Chromium through playwright-core, against
// a server whose apps and instances a simulated cluster made (bench/sim_agents.py).
//
//   node tests/ui/scale.mjs check   the overview lists every app: the count, every
//                                   id met while scrolling the virtualised table,
//                                   first/middle/last found with the filter box;
//                                   screenshots (tests/integration/test_dashboard_scale.py)
//   node tests/ui/scale.mjs bench   navigation -> overview rendered, cold (a fresh
//                                   profile per round) and warm; one JSON line per
//                                   load (bench/dashboard_bench.py)
//
// "Rendered" (the bench's clock, from the navigation's start, performance.now()):
//   apps      the apps panel says "Apps (N)", its table has N rows and draws its
//             first row; stamped after the next frame (rAF, then a task)
//   overview  that, and the instances table has all M instances with its first row
//             drawn, and the nodes panel one meter per node
// Environment: STELE_URL, STELE_SCALE_APPS (500), STELE_SCALE_INSTANCES (apps x 10),
// STELE_SCALE_NODES (50), STELE_UI_ARTIFACTS, CHROMIUM, and for bench
// STELE_BENCH_COLD (5 fresh profiles) and STELE_BENCH_WARM (5 loads in each).
import { launchChromium } from './browser.mjs';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mode = process.argv[2] || 'check';
const base = process.env.STELE_URL;
const apps = Number(process.env.STELE_SCALE_APPS || 500);
const instances = Number(process.env.STELE_SCALE_INSTANCES || apps * 10);
const nodes = Number(process.env.STELE_SCALE_NODES || 50);
const artifacts = process.env.STELE_UI_ARTIFACTS || 'build/test-artifacts/ui/scale';
const appId = (i) => `/sim/app${String(i).padStart(4, '0')}`;

async function launch() {
  const dir = mkdtempSync(join(tmpdir(), 'stele-ui-scale-'));
  const context = await launchChromium(dir);
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { context, page, errors, close: async () => { await context.close(); rmSync(dir, { recursive: true, force: true }); } };
}

// Runs in the page before its scripts: stamps window.__stele.{apps,overview}
// (see the header) and the long tasks' total.
function stamps({ apps, instances, nodes }) {
  const out = { longtasks: 0 };
  window.__stele = out;
  new PerformanceObserver((l) => { for (const e of l.getEntries()) out.longtasks += e.duration; })
    .observe({ type: 'longtask', buffered: true });
  const table = (name, n) => document.querySelector(`[data-table="${name}"][data-rows="${n}"] .vrow`);
  const ready = {
    apps: () => table('apps', apps) && document.querySelector('#apps h2')?.textContent === `Apps (${apps})`,
    overview: () => ready.apps() && table('instances', instances) && document.querySelectorAll('[data-node]').length === nodes,
  };
  const check = () => {
    for (const [k, fn] of Object.entries(ready)) {
      if (out[k] || !fn()) continue;
      out[k] = { dom: performance.now() };
      requestAnimationFrame(() => setTimeout(() => { out[k].paint = performance.now(); }));
    }
    if (out.overview) mo.disconnect();
  };
  const mo = new MutationObserver(check);
  mo.observe(document, { childList: true, subtree: true, attributes: true, characterData: true });
}

async function load(page) {
  await page.goto(`${base}/ui/`, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.__stele?.overview?.paint, null, { timeout: 60000, polling: 50 });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/'))
      .map((r) => ({ path: new URL(r.name).pathname + new URL(r.name).search, ms: r.responseEnd - r.startTime,
        end: r.responseEnd, bytes: r.encodedBodySize, decoded: r.decodedBodySize }));
    const assets = performance.getEntriesByType('resource').filter((r) => /\/ui\/app-/.test(r.name))
      .map((r) => ({ name: r.name.split('/').pop(), transfer: r.transferSize, end: r.responseEnd }));
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { apps: window.__stele.apps.paint, overview: window.__stele.overview.paint, fcp: fcp && fcp.startTime,
      domContentLoaded: nav.domContentLoadedEventEnd, longtasks: window.__stele.longtasks,
      heapMB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null, api, assets };
  });
}

async function bench() {
  const cold = Number(process.env.STELE_BENCH_COLD || 5);
  const warm = Number(process.env.STELE_BENCH_WARM || 5);
  for (let round = 0; round < cold; round++) {
    const b = await launch();
    await b.page.addInitScript(stamps, { apps, instances, nodes });
    for (let i = 0; i <= warm; i++) {
      const r = await load(b.page);
      console.log(JSON.stringify({ round, kind: i === 0 ? 'cold' : 'warm', ...r }));
    }
    if (b.errors.length) console.error(`browser errors: ${b.errors.join(' | ')}`);
    await b.close();
  }
}

async function check() {
  mkdirSync(artifacts, { recursive: true });
  for (const f of readdirSync(artifacts)) if (f.endsWith('.png')) rmSync(join(artifacts, f));
  const b = await launch();
  const { page } = b;
  const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  const table = page.locator('[data-table="apps"]');
  const body = table.locator('.vbody');
  try {
    await page.addInitScript(stamps, { apps, instances, nodes });
    const t = await load(page);
    console.log(`# overview rendered ${Math.round(t.overview)} ms after navigation (apps ${Math.round(t.apps)} ms)`);
    await table.locator(`.vrow[data-key="${appId(0)}"]`).waitFor();
    await shot('overview-500');

    // Every id, met while scrolling the table top to bottom a screen at a time.
    const seen = new Set();
    const { height, client } = await body.evaluate((el) => { el.scrollTop = 0; return { height: el.scrollHeight, client: el.clientHeight }; });
    for (let top = 0; ; top += client) {
      await body.evaluate((el, y) => { el.scrollTop = y; }, top);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r))));
      for (const k of await table.locator('.vrow').evaluateAll((rs) => rs.map((r) => r.dataset.key))) seen.add(k);
      if (top + client >= height) break;
    }
    const missing = [...Array(apps).keys()].map(appId).filter((id) => !seen.has(id));
    if (seen.size !== apps || missing.length) throw new Error(`scrolling met ${seen.size} apps; missing ${missing.slice(0, 10).join(', ')}`);
    await table.locator(`.vrow[data-key="${appId(apps - 1)}"]`).waitFor();
    await shot('overview-500-bottom');
    console.log(`ok - scrolling the apps table meets all ${apps} apps`);

    const middle = 1 + Math.floor(Math.random() * (apps - 2));
    for (const i of [0, apps - 1, middle]) {
      await page.fill('#apps input[type="search"]', appId(i));
      await page.locator(`[data-table="apps"][data-rows="1"] .vrow[data-key="${appId(i)}"]`).waitFor({ timeout: 5000 });
    }
    await shot('overview-500-filtered');
    console.log(`ok - the filter finds ${appId(0)}, ${appId(middle)} and ${appId(apps - 1)}`);
    await page.click(`[data-table="apps"] .vrow[data-key="${appId(middle)}"] a`);
    await page.locator('.app-page h1', { hasText: appId(middle) }).waitFor();
    await page.locator('[data-table="instances"] .vrow').first().waitFor();
    await shot('app-of-500');
    console.log(`ok - ${appId(middle)}'s page opens from the overview`);
    if (b.errors.length) throw new Error(`browser errors: ${b.errors.join(' | ')}`);
  } catch (e) {
    console.log(`not ok - ${e.message}`);
    await shot('FAILED').catch(() => {});
    process.exitCode = 1;
  } finally {
    await b.close();
  }
}

await (mode === 'bench' ? bench() : check());
