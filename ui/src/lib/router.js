// Client-side routes under /ui/ (the server answers index.html for all of
// them): history.pushState and a hook that re-renders on navigation.
import { useEffect, useState } from 'preact/hooks';

const subs = new Set();

export function navigate(href, replace = false) {
  if (href === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', href);
  subs.forEach((fn) => fn());
}

window.addEventListener('popstate', () => subs.forEach((fn) => fn()));

export function useLocation() {
  const [loc, set] = useState({ path: location.pathname, search: location.search });
  useEffect(() => {
    const fn = () => set({ path: location.pathname, search: location.search });
    subs.add(fn);
    return () => subs.delete(fn);
  }, []);
  return loc;
}

// Sets one query parameter of the current URL without a new history entry.
export function setParam(key, value) {
  const u = new URL(location.href);
  if (value === null || value === undefined || value === '') u.searchParams.delete(key);
  else u.searchParams.set(key, value);
  navigate(u.pathname + u.search, true);
}

export const param = (key) => new URL(location.href).searchParams.get(key);
