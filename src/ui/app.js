// The Leasehold dashboard. It reads the public API every POLL_MS (pools, leased items,
// /metrics), follows one pool's event stream, and draws what it got with DOM nodes and
// text only: pool, item and holder names and item data are user data, so nothing here
// ever goes through innerHTML.
'use strict';

const POLL_MS = 2000;
const TICK_MS = 250;
// How far back the per-route conflict rates and trends look.
const WINDOW_MS = 5 * 60 * 1000;
const LEASES_PER_POOL = 100;
const MAX_LEASE_ROWS = 200;
const KEY_STORAGE = 'leasehold.apiKey';
const STATES = ['available', 'leased', 'delayed', 'done', 'dead'];
const SVG = 'http://www.w3.org/2000/svg';

// The API lives one level above this page (`/ui/` → `/`), so a proxy's path prefix works.
const BASE = new URL('..', location.href);

// ---- the API key: session storage only, never part of a URL the server sees -----------

let memoryKey = '';

function readKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch (_) {
    return memoryKey;
  }
}

function writeKey(key) {
  memoryKey = key;
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch (_) {
    // Storage refused (a private window): the key lasts as long as the page.
  }
}

// A link may carry `#key=…`: fragments are never sent to a server; move it to session
// storage and take it out of the address bar and history.
function takeKeyFromFragment() {
  const match = /(?:^#|&)key=([^&]*)/.exec(location.hash);
  if (!match) return;
  try {
    writeKey(decodeURIComponent(match[1]));
  } catch (_) {
    writeKey(match[1]);
  }
  history.replaceState(null, '', location.pathname + location.search);
}

// ---- the server's clock ------------------------------------------------------------------

// Leases expire by the server's clock, not this computer's. Each answer's `Date` header
// (whole seconds) bounds the offset between the two clocks: the server wrote it at some
// instant between our request and its arrival, within a second after the stated time.
// Intersecting the bounds of recent answers narrows the offset to well under a second.
const clockBounds = [];

function observeDate(response, sentAt, receivedAt) {
  const stated = Date.parse(response.headers.get('date') || '');
  if (Number.isNaN(stated)) return;
  clockBounds.push([stated - receivedAt, stated + 1000 - sentAt]);
  if (clockBounds.length > 60) clockBounds.shift();
}

function clockOffset() {
  if (clockBounds.length === 0) return 0;
  let lo = -Infinity;
  let hi = Infinity;
  for (const [l, h] of clockBounds) {
    lo = Math.max(lo, l);
    hi = Math.min(hi, h);
  }
  if (lo > hi) {
    // A clock moved (or another replica answered): start again from the latest answer.
    const latest = clockBounds[clockBounds.length - 1];
    clockBounds.length = 0;
    clockBounds.push(latest);
    [lo, hi] = latest;
  }
  return (lo + hi) / 2;
}

function serverNow() {
  return Date.now() + clockOffset();
}

// ---- talking to the API ------------------------------------------------------------------

class Problem extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A request to the API with the key; the response when it is a success, else a Problem.
async function request(path, accept, signal, extraHeaders) {
  const headers = { Accept: accept, ...extraHeaders };
  const key = readKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(new URL(path, BASE), {
      headers,
      cache: 'no-store',
      credentials: 'omit',
      signal,
    });
  } catch (e) {
    if (signal && signal.aborted) throw e;
    throw new Problem(0, 'unreachable', 'Cannot reach Leasehold at ' + BASE.href);
  }
  observeDate(response, sentAt, Date.now());
  if (!response.ok) {
    let body = {};
    try {
      body = await response.json();
    } catch (_) {
      // Not problem+json: the status says enough.
    }
    const code = typeof body.code === 'string' ? body.code : '';
    const text = body.detail || body.title || response.statusText || 'request failed';
    throw new Problem(response.status, code, response.status + ' ' + code + ': ' + text);
  }
  return response;
}

async function api(path, asText, signal) {
  const response = await request(path, asText ? 'text/plain' : 'application/json', signal);
  return asText ? response.text() : response.json();
}

const poolPath = (name) => 'v1/pools/' + encodeURIComponent(name);

// The page of pools shown: a stack of the `after` of each page from the first, so that the
// pager can go on and back; POOLS_PER_PAGE pools a page.
const POOLS_PER_PAGE = 50;
const poolPages = [''];
let nextPoolsAfter = null;

// Counts, config and stats of the pools of the page shown, and their leased items (only
// where there are any).
async function readPools() {
  const after = poolPages[poolPages.length - 1];
  const list = await api(
    'v1/pools?limit=' + POOLS_PER_PAGE + (after ? '&after=' + encodeURIComponent(after) : ''),
  );
  nextPoolsAfter = list.next_after;
  drawPager();
  const pools = await Promise.all(
    list.pools.map(async (summary) => {
      try {
        const pool = await api(poolPath(summary.name));
        const leased =
          pool.counts.leased > 0
            ? await api(poolPath(pool.name) + '/items?state=leased&limit=' + LEASES_PER_POOL)
            : { items: [] };
        return { pool, leases: leased.items };
      } catch (e) {
        // Deleted between the listing and now.
        if (e instanceof Problem && e.status === 404) return null;
        throw e;
      }
    }),
  );
  return pools.filter(Boolean);
}

// ---- /metrics: samples of conflicts and requests per route -------------------------------

// Parses the Prometheus text format's sample lines for the two counters this page uses.
function parseMetrics(text) {
  const conflicts = new Map(); // route → Map(code → count)
  const requests = new Map(); // route → count, over every method and status
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sample = parseSample(line);
    if (!sample) continue;
    const route = sample.labels.route;
    if (route === undefined) continue;
    if (sample.name === 'leasehold_conflicts_total') {
      if (!conflicts.has(route)) conflicts.set(route, new Map());
      const codes = conflicts.get(route);
      const code = sample.labels.code || '?';
      codes.set(code, (codes.get(code) || 0) + sample.value);
    } else if (sample.name === 'leasehold_http_requests_total') {
      requests.set(route, (requests.get(route) || 0) + sample.value);
    }
  }
  return { conflicts, requests };
}

// `name{label="value",…} number`, with `\\`, `\"` and `\n` escapes in label values.
function parseSample(line) {
  const nameMatch = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
  if (!nameMatch) return null;
  const labels = {};
  let i = nameMatch[1].length;
  if (line[i] === '{') {
    i += 1;
    while (i < line.length && line[i] !== '}') {
      const eq = line.indexOf('=', i);
      if (eq < 0 || line[eq + 1] !== '"') return null;
      const label = line.slice(i, eq).trim();
      let value = '';
      let j = eq + 2;
      for (; j < line.length && line[j] !== '"'; j += 1) {
        if (line[j] === '\\' && j + 1 < line.length) {
          j += 1;
          value += line[j] === 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      labels[label] = value;
      i = j + 1;
      if (line[i] === ',') i += 1;
    }
    i += 1;
  }
  const value = Number(line.slice(i).trim().split(/\s+/)[0]);
  if (!Number.isFinite(value)) return null;
  return { name: nameMatch[1], labels, value };
}

const samples = []; // { at, conflicts, requests } in the order taken

function addSample(text) {
  const at = Date.now();
  samples.push({ at, ...parseMetrics(text) });
  // Keep one sample at or before the window's start, so the window is full once it can be.
  while (samples.length > 2 && samples[1].at <= at - WINDOW_MS) samples.shift();
}

const sum = (map) => [...map.values()].reduce((a, b) => a + b, 0);

// What a counter gained between two samples; a fall means the process restarted (or a
// different replica answered), and then the new value is all that is known to be new.
const gain = (before, after) => (after >= before ? after - before : after);

function routeRates() {
  const last = samples[samples.length - 1];
  const span = samples.length > 1 ? last.at - samples[0].at : 0;
  const rows = [];
  for (const [route, codes] of last.conflicts) {
    const steps = [];
    let conflicts = 0;
    let requests = 0;
    for (let n = 1; n < samples.length; n += 1) {
      const [a, b] = [samples[n - 1], samples[n]];
      const step = gain(sum(a.conflicts.get(route) || new Map()), sum(b.conflicts.get(route) || new Map()));
      steps.push({ at: b.at, n: step });
      conflicts += step;
      requests += gain(a.requests.get(route) || 0, b.requests.get(route) || 0);
    }
    rows.push({ route, codes, total: sum(codes), conflicts, requests, steps, span });
  }
  rows.sort((a, b) => b.conflicts - a.conflicts || b.total - a.total || a.route.localeCompare(b.route));
  return { rows, span };
}

// ---- drawing -----------------------------------------------------------------------------

// An element with attributes and children; strings become text nodes, never markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

const number = (n) => Number(n).toLocaleString('en-US');

function duration(ms) {
  if (!ms) return 'none';
  const s = ms / 1000;
  if (s < 60) return number(Math.round(s * 10) / 10) + ' s';
  if (s < 3600) return number(Math.round((s / 60) * 10) / 10) + ' min';
  return number(Math.round((s / 3600) * 10) / 10) + ' h';
}

// Time left, counting like a timer: whole seconds rounded up, so 0s means expired.
function timeLeft(ms) {
  if (ms <= 0) return 'expired';
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return h + 'h ' + String(m).padStart(2, '0') + 'm';
  if (m > 0) return m + 'm ' + String(s).padStart(2, '0') + 's';
  return s + 's';
}

function stateBar(counts) {
  const width = 160;
  const height = 12;
  const total = STATES.reduce((a, s) => a + counts[s], 0);
  const bar = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'states' });
  bar.setAttribute('role', 'img');
  bar.setAttribute('aria-label', STATES.map((s) => `${counts[s]} ${s}`).join(', '));
  if (total === 0) {
    bar.append(svg('rect', { x: 0, y: 0, width, height, rx: 3, class: 'fill-empty' }));
    return bar;
  }
  let x = 0;
  for (const state of STATES) {
    if (counts[state] === 0) continue;
    const w = (counts[state] / total) * width;
    bar.append(svg('rect', { x, y: 0, width: Math.max(w, 1), height, class: 'fill-' + state }));
    x += w;
  }
  return bar;
}

// Conflicts over the window in 10-second buckets, the newest on the right. The buckets
// stay put in time, so a burst keeps its place as the window moves on.
const BUCKET_MS = 10000;

function sparkline(steps) {
  const buckets = new Array(Math.round(WINDOW_MS / BUCKET_MS)).fill(0);
  const now = Date.now();
  for (const { at, n } of steps) {
    const age = Math.floor((now - at) / BUCKET_MS);
    if (age >= 0 && age < buckets.length) buckets[buckets.length - 1 - age] += n;
  }
  const slot = 5;
  const width = buckets.length * slot;
  const height = 22;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'spark' });
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', 'conflicts per 10 s, oldest first: ' + buckets.join(' '));
  chart.append(svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'spark-base' }));
  const max = Math.max(1, ...buckets);
  buckets.forEach((v, i) => {
    if (v === 0) return;
    const h = Math.max(2, (v / max) * (height - 2));
    chart.append(svg('rect', { x: i * slot, y: height - h, width: slot - 1, height: h, class: 'spark-bar' }));
  });
  return chart;
}

function cell(col, content, cls) {
  return el('td', { 'data-col': col, class: cls }, content);
}

function drawPools(pools) {
  const rows = pools.map(({ pool }) =>
    el(
      'tr',
      { 'data-pool': pool.name, 'data-paused': pool.config.paused ? 'true' : undefined },
      // A paused pool (claims grant nothing) is marked beside its name.
      cell('name', pool.name, pool.config.paused ? 'name paused' : 'name'),
      ...STATES.map((s) => cell(s, number(pool.counts[s]), `num state-${s}` + (pool.counts[s] ? '' : ' zero'))),
      cell('share', stateBar(pool.counts), 'bar'),
      cell('claims', number(pool.stats.claims), 'num'),
      cell('conflicts', number(pool.stats.conflicts), 'num' + (pool.stats.conflicts ? ' warn' : '')),
      cell('expired', number(pool.stats.expired), 'num'),
      cell('lease', duration(pool.config.lease_ms), 'num muted'),
    ),
  );
  document.querySelector('#pools tbody').replaceChildren(...rows);
  document.getElementById('pools-empty').hidden = pools.length > 0;
}

function drawLeases(pools) {
  const all = [];
  for (const { pool, leases } of pools) for (const item of leases) all.push({ pool: pool.name, item });
  const expiry = (l) => (l.item.lease_expires_at ? Date.parse(l.item.lease_expires_at) : Infinity);
  all.sort((a, b) => expiry(a) - expiry(b) || a.pool.localeCompare(b.pool) || a.item.id.localeCompare(b.item.id));
  const shown = all.slice(0, MAX_LEASE_ROWS);
  const rows = shown.map(({ pool, item }) => {
    const data = JSON.stringify(item.data);
    const left = item.lease_expires_at
      ? el('td', { 'data-col': 'left', class: 'num left', 'data-expires': Date.parse(item.lease_expires_at) })
      : cell('left', 'no expiry', 'num muted');
    return el(
      'tr',
      { 'data-pool': pool, 'data-item': item.id },
      cell('pool', pool, 'name'),
      cell('item', item.id, 'name mono'),
      cell('holder', item.holder, 'name holder'),
      left,
      cell('attempts', number(item.attempts), 'num'),
      cell('version', number(item.version), 'num muted'),
      el('td', { 'data-col': 'data', class: 'data mono', title: data }, data === '{}' ? '' : data),
    );
  });
  document.querySelector('#leases tbody').replaceChildren(...rows);
  tick();
  const leased = pools.reduce((a, p) => a + p.pool.counts.leased, 0);
  document.getElementById('leases-empty').hidden = leased > 0;
  const more = document.getElementById('leases-more');
  more.hidden = leased <= shown.length;
  more.textContent = `Showing ${number(shown.length)} of ${number(leased)} leases.`;
}

function drawRoutes() {
  const { rows, span } = routeRates();
  const minutes = span / 60000;
  const windowLabel = span >= WINDOW_MS - POLL_MS ? 'last 5 min' : span > 0 ? `last ${Math.round(span / 1000)} s` : 'window';
  document.getElementById('window-head').textContent = windowLabel;
  const trs = rows.map((r) =>
    el(
      'tr',
      { 'data-route': r.route },
      cell('route', r.route, 'name mono'),
      cell(
        'codes',
        [...r.codes].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${number(n)}`).join(', '),
        'name codes',
      ),
      cell('total', number(r.total), 'num'),
      cell('window', span > 0 ? number(r.conflicts) : '—', 'num' + (r.conflicts ? ' warn' : '')),
      cell('per-min', span > 0 ? number(Math.round((r.conflicts / minutes) * 10) / 10) : '—', 'num'),
      cell('share', r.requests > 0 ? (Math.round((1000 * r.conflicts) / r.requests) / 10).toFixed(1) + ' %' : '—', 'num'),
      cell('trend', sparkline(r.steps), 'spark'),
    ),
  );
  document.querySelector('#routes tbody').replaceChildren(...trs);
  document.getElementById('routes-empty').hidden = rows.length > 0;
}

function tick() {
  const now = serverNow();
  for (const node of document.querySelectorAll('[data-expires]')) {
    const left = Number(node.getAttribute('data-expires')) - now;
    node.textContent = timeLeft(left);
    node.classList.toggle('soon', left < 10000);
  }
}

function clearTables() {
  for (const id of ['pools', 'leases', 'routes']) document.querySelector(`#${id} tbody`).replaceChildren();
  forgetFeed();
}

// ---- the event feed: one pool's changes, as they happen ------------------------------------

// The stream needs the key in a header, which `EventSource` cannot send: it is read with
// fetch() instead, parsed here, and followed again after a drop from the last event shown.

const EVENT_ROWS = 50;
// The seed reads pages this long (the API's largest), in windows reaching this far back.
const SEED_PAGE = 1000;
const LOOK_BACK_MS = [60e3, 3600e3, 86400e3, Infinity];
// After a dropped stream, wait this long before each new try (the last one repeats).
const RETRY_MS = [500, 1000, 2000, 5000];
// The server sends a comment every 15 s when idle; this much silence means a dead connection.
const SILENCE_MS = 45000;
// The largest sequence an event id may have: after `<ms - 1>-<this>` comes `<ms>-0`.
const LAST_SEQ = '9999999999999999999';

// Reads `text/event-stream` as the HTML standard does, from text in chunks of any size:
// lines end in LF, CR or CRLF (a CRLF may be split between chunks), a line starting with
// ':' is a comment (the server's keep-alive), a field's value loses one leading space,
// `data` lines join with LF, and a blank line ends a message (one without data is
// dropped). `retry` is ignored: the page keeps its own backoff.
class EventStreamParser {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.buffer = '';
    this.started = false;
    this.afterCR = false;
    this.type = '';
    this.data = [];
    this.id = '';
  }

  push(text) {
    if (text === '') return;
    let buffer = this.buffer + text;
    if (!this.started) {
      this.started = true;
      if (buffer[0] === '\uFEFF') buffer = buffer.slice(1);
    }
    // A CR that ended the last chunk and an LF that starts this one are one line break.
    let start = this.afterCR && buffer[0] === '\n' ? 1 : 0;
    const eol = /\r\n|\r|\n/g;
    eol.lastIndex = start;
    for (let end = eol.exec(buffer); end; end = eol.exec(buffer)) {
      this.line(buffer.slice(start, end.index));
      start = eol.lastIndex;
    }
    this.afterCR = start > 0 && start === buffer.length && buffer.endsWith('\r');
    this.buffer = buffer.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        this.onMessage({ type: this.type || 'message', data: this.data.join('\n'), id: this.id });
      }
      this.type = '';
      this.data = [];
      return;
    }
    if (line[0] === ':') return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

// Event ids are `<ms>-<seq>` without leading zeros: compare them as numbers, digit strings
// by length first (they can exceed what a JavaScript number holds exactly).
function compareIds(a, b) {
  const digits = (x, y) => x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  return digits(am, bm) || digits(as, bs);
}

const idMs = (id) => Number(id.split('-')[0]);

const eventsPath = (pool, after, limit) =>
  poolPath(pool) + '/events?limit=' + limit + (after ? '&after=' + encodeURIComponent(after) : '');

// The pool's last EVENT_ROWS events, oldest first, without reading its whole log (it keeps
// up to max_events, 10,000 by default): the oldest event tells where the log starts; then windows of growing
// length reaching back from now are read, each up to where the later one began, until
// they hold enough or reach the start. Ids are times by Redis's clock.
async function lastEvents(pool, signal) {
  const oldest = (await api(eventsPath(pool, null, 1), false, signal)).events[0];
  if (!oldest) return [];
  const start = idMs(oldest.id);
  let kept = [];
  let until = Infinity;
  for (const span of LOOK_BACK_MS) {
    const from = Math.max(start, Math.floor(serverNow() - span));
    if (from >= until) continue;
    const after = from > start ? `${from - 1}-${LAST_SEQ}` : null;
    kept = (await readWindow(pool, after, until, signal)).concat(kept).slice(-EVENT_ROWS);
    until = from;
    if (kept.length >= EVENT_ROWS || from === start) break;
  }
  return kept;
}

// The last EVENT_ROWS events after `after` and before the millisecond `until`, oldest first.
async function readWindow(pool, after, until, signal) {
  const kept = [];
  for (;;) {
    const page = await api(eventsPath(pool, after, SEED_PAGE), false, signal);
    for (const event of page.events) {
      if (idMs(event.id) >= until) return kept;
      kept.push(event);
      if (kept.length > EVENT_ROWS) kept.shift();
    }
    if (page.events.length < SEED_PAGE || !page.next_after) return kept;
    after = page.next_after;
  }
}

// One pool followed by the panel. `last` is the newest event it has, to go on from.
class Feed {
  constructor(pool) {
    this.pool = pool;
    this.last = null;
    this.seeded = false;
    this.controller = null; // aborts the running attempt; null while stopped
    this.ended = false; // given up: the pool is gone, or the key was refused
  }
}

let feed = null;
// The pool picked in the panel's list (the first pool until one is picked).
let pickedPool = '';
let poolNames = [];

function panel() {
  return document.getElementById('events-panel');
}

function setFeedState(state, text) {
  panel().dataset.state = state;
  const shown = document.getElementById('events-state');
  shown.textContent = text;
  shown.className = 'feed ' + state;
}

function countOnPanel(name, n) {
  panel().dataset[name] = String(Number(panel().dataset[name] || 0) + n);
}

function showEventsNote(text) {
  const note = document.getElementById('events-note');
  note.textContent = text;
  note.hidden = !text;
}

function drawEventsEmpty(text) {
  const empty = document.getElementById('events-empty');
  if (text !== undefined) empty.textContent = text;
  empty.hidden = document.querySelector('#events tbody').rows.length > 0;
}

const optional = (value) => (value === null || value === undefined ? '—' : String(value));

// `HH:MM:SS.mmm` in this computer's time zone; the full time is in `datetime`.
function clockTime(at) {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return at;
  return date.toLocaleTimeString('en-GB') + '.' + String(date.getMilliseconds()).padStart(3, '0');
}

function eventRow(event, fresh) {
  const time = el('time', { datetime: event.at, title: event.at }, clockTime(event.at));
  return el(
    'tr',
    { 'data-id': event.id, class: fresh ? 'fresh' : undefined },
    el('td', { 'data-col': 'at', class: 'time mono muted' }, time),
    cell('type', event.type, 'name type'),
    // A change to the pool itself (paused, resumed) names no item.
    cell('item', event.item ?? 'the pool', event.item ? 'name mono' : 'name muted'),
    cell('state', optional(event.state), event.state ? 'name state-' + event.state : 'name muted'),
    cell('holder', optional(event.holder), event.holder ? 'name holder' : 'name muted'),
    cell('token', optional(event.token), 'num mono' + (event.token === null ? ' muted' : '')),
    // The lease expiry the change concerns (a grant's, a renewal's, the one that ran out).
    event.lease_expires_at
      ? el(
          'td',
          { 'data-col': 'until', class: 'time mono muted', 'data-at': event.lease_expires_at },
          clockTime(event.lease_expires_at),
        )
      : cell('until', '—', 'time muted'),
    cell('version', event.version === null ? '—' : number(event.version), 'num muted'),
  );
}

// Puts events (oldest first) on top of the table, newest first, past those shown; an
// event at or before the newest one shown is one already there.
function addEvents(current, signal, events, fresh) {
  if (signal.aborted || current !== feed) return;
  const newer = events.filter((e) => !current.last || compareIds(e.id, current.last) > 0);
  if (newer.length > 0) {
    current.last = newer[newer.length - 1].id;
    const body = document.querySelector('#events tbody');
    body.prepend(...newer.slice(-EVENT_ROWS).reverse().map((e) => eventRow(e, fresh)));
    while (body.rows.length > EVENT_ROWS) body.lastElementChild.remove();
  }
  drawEventsEmpty();
}

// One connection to the stream, from after the newest event shown, until it ends, fails,
// falls silent, or the feed is stopped.
async function readStream(current, signal, connected) {
  const connection = new AbortController();
  const cut = () => connection.abort();
  signal.addEventListener('abort', cut);
  let silence = 0;
  const listen = () => {
    clearTimeout(silence);
    silence = setTimeout(cut, SILENCE_MS);
  };
  try {
    listen();
    const resume = current.last ? { 'Last-Event-ID': current.last } : {};
    const path = poolPath(current.pool) + '/events/stream';
    const response = await request(path, 'text/event-stream', connection.signal, resume);
    countOnPanel('connects', 1);
    connected();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let batch = [];
    const parser = new EventStreamParser((message) => {
      if (message.type === 'trimmed') {
        showEventsNote('Some events were dropped by the pool\'s cap before this page could read them.');
        return;
      }
      try {
        batch.push(JSON.parse(message.data));
      } catch (_) {
        // Not an event: nothing to show.
      }
    });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      listen();
      parser.push(decoder.decode(value, { stream: true }));
      if (batch.length > 0) {
        countOnPanel('streamed', batch.length);
        addEvents(current, signal, batch, true);
        batch = [];
      }
    }
  } finally {
    clearTimeout(silence);
    signal.removeEventListener('abort', cut);
    connection.abort();
  }
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

// Seeds the table once, then follows the stream, connecting again after each drop with a
// growing pause, until stopped or the server says the pool is gone or the key is refused.
async function runFeed(current, signal) {
  let failures = 0;
  while (!signal.aborted) {
    try {
      if (!current.seeded) {
        setFeedState('loading', 'loading…');
        const seed = await lastEvents(current.pool, signal);
        addEvents(current, signal, seed, false);
        current.seeded = true;
      }
      await readStream(current, signal, () => {
        failures = 0;
        setFeedState('live', 'live');
      });
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof Problem && [401, 403, 404].includes(e.status)) {
        current.ended = true;
        current.controller = null;
        setFeedState('ended', e.status === 404 ? 'pool deleted' : 'stopped: ' + e.message);
        return;
      }
    }
    if (signal.aborted) return;
    const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
    failures += 1;
    setFeedState('reconnecting', `reconnecting in ${wait / 1000} s`);
    await pause(wait, signal);
  }
}

function resumeFeed() {
  if (!feed || feed.controller || feed.ended) return;
  feed.controller = new AbortController();
  runFeed(feed, feed.controller.signal);
}

function stopFeed(state, text) {
  if (feed && feed.controller) {
    feed.controller.abort();
    feed.controller = null;
  }
  setFeedState(state, text);
}

// Shows `pool` in the panel from its last events on, in place of whatever it showed.
function follow(pool) {
  stopFeed('loading', 'loading…');
  document.querySelector('#events tbody').replaceChildren();
  showEventsNote('');
  drawEventsEmpty(pool ? 'No events in this pool yet.' : 'No pool to follow yet.');
  feed = pool ? new Feed(pool) : null;
  if (!pool) setFeedState('idle', 'idle');
  else if (document.hidden) setFeedState('paused', 'paused while the page is hidden');
  else resumeFeed();
}

// After each poll: the list of pools to pick from, and the picked one followed (again, if
// it had ended and is listed).
function followPools(names) {
  const select = document.getElementById('events-pool');
  if (names.join('\n') !== poolNames.join('\n')) {
    poolNames = names;
    select.replaceChildren(...names.map((name) => el('option', { value: name }, name)));
  }
  const pool = names.includes(pickedPool) ? pickedPool : names[0] || '';
  select.disabled = names.length === 0;
  select.value = pool;
  const following = feed && feed.pool === pool && !feed.ended;
  if (!following && (pool || feed)) follow(pool);
}

function forgetFeed() {
  follow('');
  poolNames = [];
  document.getElementById('events-pool').replaceChildren();
  document.getElementById('events-pool').disabled = true;
}

// ---- status --------------------------------------------------------------------------------

function setStatus(text, ok) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.classList.toggle('bad', !ok);
}

let asking = false;

function showProblem(problem) {
  const box = document.getElementById('problem');
  box.hidden = false;
  if (problem.status === 401) {
    box.textContent = readKey()
      ? 'This API key was refused (401). Enter a valid key above.'
      : 'This server needs an API key (401). Enter one above: it is kept in this tab only.';
    clearTables();
    // Once, not on every poll: focus must not be taken from wherever the user went.
    if (!asking) document.getElementById('key').focus();
    asking = true;
    setStatus('needs a key', false);
    return;
  }
  asking = false;
  box.textContent = problem.message || String(problem);
  document.body.classList.add('stale');
  setStatus('error: showing the last good data', false);
}

function clearProblem() {
  asking = false;
  document.getElementById('problem').hidden = true;
  document.body.classList.remove('stale');
}

// Counts the draws in `data-polls` (the browser test uses it to tell polls apart).
function markUpdated() {
  const polls = Number(document.body.dataset.polls || 0) + 1;
  document.body.dataset.polls = String(polls);
  const offset = clockOffset();
  const when = new Date().toLocaleTimeString('en-GB');
  document.getElementById('updated').textContent =
    `Updated ${when} · server clock ${offset >= 0 ? '+' : '−'}${(Math.abs(offset) / 1000).toFixed(1)} s from this computer's`.replace(/[+−](0\.0 s)/, '±$1');
  setStatus('live', true);
}

function drawPager() {
  const first = poolPages.length === 1;
  document.getElementById('pools-pager').hidden = first && !nextPoolsAfter;
  document.getElementById('pools-first').disabled = first;
  document.getElementById('pools-next').disabled = !nextPoolsAfter;
  document.getElementById('pools-page').textContent =
    'page ' + poolPages.length + (first ? '' : ', after ' + poolPages[poolPages.length - 1]);
}

// ---- the loop ------------------------------------------------------------------------------

let timer = 0;
let running = false;
let again = false;

async function poll() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  clearTimeout(timer);
  try {
    const [pools, metrics] = await Promise.all([
      readPools(),
      api('metrics', true).catch((e) => e),
    ]);
    drawPools(pools);
    drawLeases(pools);
    followPools(pools.map(({ pool }) => pool.name));
    if (typeof metrics === 'string') {
      addSample(metrics);
      drawRoutes();
    }
    clearProblem();
    markUpdated();
    if (!(typeof metrics === 'string')) setStatus('live (no metrics: ' + metrics.message + ')', true);
  } catch (e) {
    showProblem(e);
  } finally {
    running = false;
    timer = setTimeout(poll, again ? 0 : POLL_MS);
    again = false;
  }
}

function start() {
  takeKeyFromFragment();
  const form = document.getElementById('key-form');
  const input = document.getElementById('key');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    writeKey(input.value.trim());
    input.value = '';
    input.placeholder = readKey() ? 'key in use for this tab' : 'not needed by leasehold dev';
    clearTables();
    poll();
  });
  document.getElementById('key-forget').addEventListener('click', () => {
    writeKey('');
    input.placeholder = 'not needed by leasehold dev';
    clearTables();
    poll();
  });
  if (readKey()) input.placeholder = 'key in use for this tab';
  document.getElementById('pools-next').addEventListener('click', () => {
    if (!nextPoolsAfter) return;
    poolPages.push(nextPoolsAfter);
    poll();
  });
  document.getElementById('pools-first').addEventListener('click', () => {
    poolPages.length = 1;
    poll();
  });
  const picker = document.getElementById('events-pool');
  picker.addEventListener('change', () => {
    pickedPool = picker.value;
    followPools(poolNames);
  });
  // A hidden tab keeps no stream open; shown again, it goes on from the last event shown.
  document.addEventListener('visibilitychange', () => {
    if (!feed || feed.ended) return;
    if (document.hidden) stopFeed('paused', 'paused while the page is hidden');
    else resumeFeed();
  });
  setInterval(tick, TICK_MS);
  poll();
}

start();
