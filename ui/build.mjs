// Builds the dashboard: src/main.js (preact + htm + uPlot) bundled and
// minified by esbuild into one JS and one CSS file with content-hashed names,
// an index.html naming them, and a .gz beside each (the server sends those to
// clients that accept gzip). Usage: node build.mjs [--outdir DIR] (default dist/).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const arg = process.argv.indexOf('--outdir');
const outdir = arg > 0 ? process.argv[arg + 1] : join(here, 'dist');

const result = await build({
  entryPoints: [join(here, 'src/main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  write: false,
  outdir: 'out',
  entryNames: 'app',
  legalComments: 'none',
  logLevel: 'warning',
});

const hash = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 10);
const files = {};
for (const f of result.outputFiles) {
  const ext = f.path.endsWith('.css') ? 'css' : 'js';
  files[ext] = { name: `app-${hash(f.contents)}.${ext}`, data: Buffer.from(f.contents) };
}
const template = readFileSync(join(here, 'src/index.html'), 'utf8');
const html = template.replace('%CSS%', files.css.name).replace('%JS%', files.js.name);

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const emit = (name, data) => {
  writeFileSync(join(outdir, name), data);
  writeFileSync(join(outdir, name + '.gz'), gzipSync(data, { level: constants.Z_BEST_COMPRESSION }));
};
emit(files.js.name, files.js.data);
emit(files.css.name, files.css.data);
emit('index.html', Buffer.from(html));
const gz = [files.js.name, files.css.name, 'index.html']
  .map((n) => readFileSync(join(outdir, n + '.gz')).length).reduce((a, b) => a + b, 0);
console.log(`ui: ${files.js.name} ${files.js.data.length} B, ${files.css.name} ${files.css.data.length} B, ${gz} B gzipped in all -> ${outdir}`);
