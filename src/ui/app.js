// The Leasehold dashboard. It reads the public API every POLL_MS (pools, leased items,
// /metrics) and draws what it got with DOM nodes and text only: pool, item and holder
// names and item data are user data, so nothing here ever goes through innerHTML.
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

async function api(path, asText) {
  const headers = { Accept: asText ? 'text/plain' : 'application/json' };
  const key = readKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(new URL(path, BASE), {
      headers,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (_) {
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
  return asText ? response.text() : response.json();
}

const poolPath = (name) => 'v1/pools/' + encodeURIComponent(name);

// Counts, config and stats of every pool, and its leased items (only where there are any).
async function readPools() {
  const list = await api('v1/pools');
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
      { 'data-pool': pool.name },
      cell('name', pool.name, 'name'),
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
  setInterval(tick, TICK_MS);
  poll();
}

start();
