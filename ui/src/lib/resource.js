// useResource(path): the JSON at `path`, reloaded on demand; keeps the last
// good answer while a reload runs so tables don't flicker.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { get } from './api.js';

export function useResource(path) {
  const [state, setState] = useState({ data: null, error: null, loading: !!path });
  const seq = useRef(0);
  const load = useCallback(() => {
    if (!path) return;
    const n = ++seq.current;
    get(path).then(
      (data) => { if (n === seq.current) setState({ data, error: null, loading: false }); },
      (error) => { if (n === seq.current) setState((s) => ({ data: s.data, error, loading: false })); },
    );
  }, [path]);
  useEffect(() => {
    setState({ data: null, error: null, loading: !!path });
    load();
  }, [load]);
  return { ...state, reload: load };
}
