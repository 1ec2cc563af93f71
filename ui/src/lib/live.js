// The one event stream (/api/v1/events/stream) for the whole page: a single
// EventSource (the browser resumes it with Last-Event-ID after a drop), the
// newest events kept for the Events page, and subscribers called per event.
import { useEffect, useRef, useState } from 'preact/hooks';

// Every type the server names its SSE events with (docs/api.md "Event").
export const EVENT_TYPES = [
  'app_created', 'release_created', 'app_deleted', 'app_scaled', 'app_reverted',
  'deployment_started', 'deployment_step', 'deployment_succeeded', 'deployment_failed', 'deployment_canceled',
  'task_status', 'health_changed', 'task_waiting', 'node_registered', 'node_reregistered', 'node_lost',
  'release_building', 'release_testing', 'release_ready', 'release_failed', 'config_changed',
  'check_state', 'check_created', 'check_updated', 'check_deleted', 'silence_created', 'silence_deleted',
];

const KEEP = 1000;
// A pseudo-event to subscribers (never from the server): the stream came back.
export const RESUMED = 'stream_resumed';
const listeners = new Set();
const statusListeners = new Set();
export const recent = [];
let source = null;
let status = 'connecting';

function setStatus(s) {
  if (s === status) return;
  status = s;
  statusListeners.forEach((fn) => fn(s));
}

function onEvent(msg) {
  let e;
  try { e = JSON.parse(msg.data); } catch (_) { return; }
  if (!e || typeof e.type !== 'string') return;
  recent.push(e);
  if (recent.length > KEEP) recent.splice(0, recent.length - KEEP);
  listeners.forEach((fn) => fn(e));
}

export function startLive() {
  if (source) return;
  source = new EventSource('/api/v1/events/stream');
  source.onopen = () => {
    // After a drop the browser resumed with Last-Event-ID; what changed while
    // the stream was down may have fallen out of the server's window: reload.
    if (status !== 'connecting' && status !== 'live') listeners.forEach((fn) => fn({ type: RESUMED }));
    setStatus('live');
  };
  source.onerror = () => setStatus(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  source.onmessage = onEvent;
  for (const t of EVENT_TYPES) source.addEventListener(t, onEvent);
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function useLiveStatus() {
  const [s, set] = useState(status);
  useEffect(() => {
    statusListeners.add(set);
    return () => statusListeners.delete(set);
  }, []);
  return s;
}

// Calls `reload` at most once per `delay` ms after events matching `match`
// (trailing edge), so a burst of task updates costs one refresh.
export function useRefreshOn(match, reload, delay = 400) {
  const ref = useRef({ match, reload });
  ref.current.match = match;
  ref.current.reload = reload;
  useEffect(() => {
    let timer = null;
    const off = subscribe((e) => {
      if ((e.type !== RESUMED && !ref.current.match(e)) || timer) return;
      timer = setTimeout(() => { timer = null; ref.current.reload(); }, delay);
    });
    return () => { off(); if (timer) clearTimeout(timer); };
  }, [delay]);
}
