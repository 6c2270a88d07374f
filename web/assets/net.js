// The pages' connection to tuiz: device id, Socket.IO with ws:connect, acks, server clock.
import { io } from '/vendor/socket.io.esm.min.js';

const DEVICE_KEY = 'tuiz_device_id';
const DEVICE_VERSION_KEY = 'tuiz_device_id_version';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The same device id the TUIZ client keeps (localStorage, UUID v4, version 1.0). */
export function deviceId() {
  try {
    const id = localStorage.getItem(DEVICE_KEY);
    if (id && UUID_RE.test(id) && localStorage.getItem(DEVICE_VERSION_KEY) === '1.0') return id;
    const fresh = uuid();
    localStorage.setItem(DEVICE_KEY, fresh);
    localStorage.setItem(DEVICE_VERSION_KEY, '1.0');
    return fresh;
  } catch {
    return uuid();
  }
}

export function readJSON(storage, key) {
  try { return JSON.parse(storage.getItem(key) || 'null'); } catch { return null; }
}

export function writeJSON(storage, key, value) {
  try {
    if (value == null) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch { /* storage full or unavailable: the page still works until reload */ }
}

/**
 * The signed-in user's bearer token, as the TUIZ client keeps it (localStorage `tuiz_session`
 * with a Supabase `access_token`); empty for guests.
 */
export function sessionAuth() {
  const session = readJSON(localStorage, 'tuiz_session');
  const token = session && session.access_token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A REST call: JSON in, JSON out; throws an Error with .status and .code on failure. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const message = (data && (data.message || data.detail || data.error)) || res.statusText;
    const err = new Error(typeof message === 'string' ? message : JSON.stringify(message));
    err.status = res.status;
    err.code = data && data.error;
    err.details = data && data.details; // e.g. a 422's errors[].loc, naming the fields
    throw err;
  }
  return data;
}

/**
 * A Socket.IO connection that registers with ws:connect on every (re)connect and then calls
 * `onReady()`. `now()` is the server clock (ms), from ws:connected.serverTime and each pong.
 */
export class Connection {
  constructor({ onReady, onStatus } = {}) {
    this.onReady = onReady || (() => {});
    this.onStatus = onStatus || (() => {});
    this.offset = 0;
    this.ready = false;
    this.deviceId = deviceId();
    this.waiters = [];
    this.socket = io({ transports: ['websocket', 'polling'], reconnectionDelayMax: 3000 });
    this.socket.on('connect', () => this.register());
    this.socket.on('disconnect', () => {
      this.ready = false;
      this.onStatus('lost');
    });
    this.socket.on('ws:connected', (data) => {
      this.syncClock(data && data.serverTime);
      const first = !this.everReady;
      this.ready = true;
      this.everReady = true;
      this.onStatus(first ? 'ready' : 'back');
      this.onReady(data);
      const waiters = this.waiters.splice(0);
      for (const resolve of waiters) resolve();
    });
    this.socket.on('ws:pong', (data) => this.syncClock(data && data.serverTime));
    this.socket.on('ws:error', (data) => {
      console.warn('ws:error', data);
    });
    this.heartbeat = setInterval(() => {
      if (this.socket.connected) {
        this.sentAt = Date.now();
        this.socket.emit('ws:heartbeat');
      }
    }, 30000);
  }

  register() {
    this.sentAt = Date.now();
    this.socket.emit('ws:connect', {
      deviceId: this.deviceId,
      metadata: { userAgent: navigator.userAgent, connectedAt: new Date().toISOString() },
    });
  }

  syncClock(serverTime) {
    const server = typeof serverTime === 'number' ? serverTime : Date.parse(serverTime || '');
    if (!Number.isFinite(server)) return;
    const received = Date.now();
    const sent = this.sentAt || received;
    // The server stamped its time somewhere between our send and our receipt.
    this.offset = server - (sent + received) / 2;
  }

  now() { return Date.now() + this.offset; }

  on(event, fn) { this.socket.on(event, fn); }

  /** Resolves once the socket is registered (ws:connected), at once if it is. */
  whenReady() {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Emit with an acknowledgement once registered (never before ws:connect, which Socket.IO's
   * send buffer would otherwise allow); resolves with the ack ({ok, ...}) or a network error.
   */
  async request(event, payload, timeoutMs = 10000) {
    await this.whenReady();
    return new Promise((resolve) => {
      this.socket.timeout(timeoutMs).emit(event, payload, (err, response) => {
        if (err) resolve({ ok: false, error: 'NETWORK', message: 'no answer from the server' });
        else resolve(response || { ok: false, error: 'NETWORK', message: 'empty answer' });
      });
    });
  }
}

/** Shows the connection state in #conn-status (role=status). */
export function connectionStatus(t) {
  const el = document.getElementById('conn-status');
  return (state) => {
    if (!el) return;
    if (state === 'lost') {
      el.textContent = t('conn.lost');
      el.hidden = false;
      el.classList.add('warn');
    } else {
      el.textContent = '';
      el.hidden = true;
      el.classList.remove('warn');
    }
  };
}

/** Runs `render(secondsLeft)` until `endsAt` (server ms); returns a stop function. */
export function countdown(conn, endsAt, render) {
  let stopped = false;
  let last = null;
  const tick = () => {
    if (stopped) return;
    const left = Math.max(0, Math.ceil((endsAt - conn.now()) / 1000));
    if (left !== last) {
      last = left;
      render(left);
    }
    if (left > 0) setTimeout(tick, 200);
  };
  tick();
  return () => { stopped = true; };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show exactly one `[data-screen]` section; move focus to its heading for screen readers. */
export function showScreen(name, { focus = true } = {}) {
  let shown = null;
  for (const section of document.querySelectorAll('section[data-screen]')) {
    const on = section.dataset.screen === name;
    section.hidden = !on;
    if (on) shown = section;
  }
  document.body.dataset.current = name;
  if (shown && focus) {
    const heading = shown.querySelector('h1, h2');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
  }
  return shown;
}

export const SHAPES = [
  { name: 'triangle', glyph: '▲', cls: 'c0' },
  { name: 'diamond', glyph: '◆', cls: 'c1' },
  { name: 'circle', glyph: '●', cls: 'c2' },
  { name: 'square', glyph: '■', cls: 'c3' },
  { name: 'star', glyph: '★', cls: 'c4' },
  { name: 'heart', glyph: '♥', cls: 'c5' },
];

// -- wire shapes: one camelCase shape per socket payload (docs/game-protocol.md) -----------

/** A leaderboard from a socket payload: `[{playerId, name, score, rank, correctCount}]`. */
export function normBoard(list) {
  return Array.isArray(list) ? list : null;
}

/** A game snapshot (game:join / game:rejoin / game:host:join / game:state acks). */
export function normSnapshot(s) {
  if (!s) return null;
  return {
    ...s,
    paused: Boolean(s.paused),
    locked: Boolean(s.locked),
    answerCounts: s.answerCounts || null,
    players: s.players || null,
    me: s.me ? { ...s.me, answer: s.me.answer || null } : null,
  };
}
