// Formatting of numbers, sizes and times for tables.

// Decimals that show a step of `incr` (an axis tick step), else `digits`.
const decimalsFor = (incr, digits) => (incr > 0 ? Math.max(0, Math.min(6, -Math.floor(Math.log10(incr)))) : digits);

export function bytes(n, incr) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let scale = 1;
  while (Math.abs(n) / scale >= 1024 && i < units.length - 1) { scale *= 1024; i++; }
  const v = n / scale;
  const d = incr ? decimalsFor(incr / scale, 1) : v >= 100 || i === 0 ? 0 : 1;
  return `${v.toFixed(d)} ${units[i]}`;
}

// Memory given in MB as Marathon specs do.
export const mb = (n) => bytes((n || 0) * 1024 * 1024);

// Large values with k/M/G/T (axis labels stay narrow).
function compact(n, incr) {
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let i = 0;
  let scale = 1;
  while (Math.abs(n) / scale >= 1000 && i < units.length - 1) { scale *= 1000; i++; }
  const d = incr ? decimalsFor(incr / scale, 1) : 1;
  return `${(n / scale).toFixed(d)}${units[i]}`;
}

export function num(n, incr) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 10000) return compact(n, incr);
  if (incr) return n.toFixed(decimalsFor(incr, 2));
  if (n !== 0 && Math.abs(n) < 0.01) return n.toPrecision(2);
  return String(Number(n.toFixed(2)));
}

export const percent = (ratio, incr) => `${num(ratio * 100, incr ? incr * 100 : undefined)}%`;

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  if (ms < 10000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export const since = (iso) => (iso ? duration(Date.now() - Date.parse(iso)) : '–');
export const ago = (iso) => (iso ? `${since(iso)} ago` : '–');

export function clock(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function stamp(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${clock(iso)}`;
}

export const pct = (used, total) => (total > 0 ? Math.min(100, (100 * used) / total) : 0);
