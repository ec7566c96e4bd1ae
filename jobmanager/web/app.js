/* Flint's web status page: reads /config once, then refreshes /overview, /taskmanagers and
 * /jobs/overview every refresh-interval. Builds the DOM with textContent only (ids and hosts come
 * from taskmanagers and are never parsed as HTML). */
'use strict';

(function () {
  const MIN_INTERVAL_MS = 500;
  const state = { interval: 3000, skewMs: 0, timer: null, heartbeatTimeoutMs: 0 };

  const $ = (id) => document.getElementById(id);

  /* GET a JSON endpoint (a relative path, so the page also works behind a path-prefix proxy). */
  async function getJSON(path) {
    const resp = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(path + ': HTTP ' + resp.status);
    const date = Date.parse(resp.headers.get('Date') || '');
    if (!Number.isNaN(date)) {
      /* The Date header has 1 s resolution: only a real clock difference counts. */
      const skew = date - Date.now();
      state.skewMs = Math.abs(skew) > 2000 ? skew : 0;
    }
    return resp.json();
  }

  function setText(id, value) {
    const node = $(id);
    if (node) node.textContent = value;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmtBytes(n) {
    if (typeof n !== 'number' || n < 0) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 || n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
  }

  function fmtDuration(ms) {
    if (typeof ms !== 'number' || ms < 0) return '–';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    const h = Math.floor(m / 60);
    if (h < 24) return h + 'h ' + (m % 60) + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }

  function fmtAge(epochMs) {
    if (typeof epochMs !== 'number' || epochMs <= 0) return '–';
    const age = Math.max(0, Date.now() + state.skewMs - epochMs);
    if (age < 1000) return 'just now';
    return fmtDuration(age) + ' ago';
  }

  function fmtTime(epochMs) {
    if (typeof epochMs !== 'number' || epochMs <= 0) return '–';
    const d = new Date(epochMs);
    const pad = (v) => String(v).padStart(2, '0');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  /* "flint://host:port/taskmanager/id" -> "host:port". */
  function tmAddress(path) {
    const m = /^[a-z]+:\/\/([^/]+)\//.exec(path || '');
    return m ? m[1] : (path || '–');
  }

  function emptyRow(colspan, text) {
    const tr = el('tr', 'empty');
    const td = el('td', null, text);
    td.colSpan = colspan;
    tr.appendChild(td);
    return tr;
  }

  function renderOverview(o) {
    const version = o['flint-version'] || o['flink-version'] || '';
    setText('version', version ? 'v' + version : '');
    setText('footer-version', 'Flint ' + version);
    setText('tm-count', o.taskmanagers);
    setText('slots-free', o['slots-available']);
    setText('slots-total', o['slots-total']);
    setText('slots-used', Math.max(0, o['slots-total'] - o['slots-available']));
    const meter = $('slots-meter');
    const ratio = o['slots-total'] > 0 ? o['slots-available'] / o['slots-total'] : 0;
    meter.style.width = (o['slots-total'] > 0 ? Math.round(ratio * 100) : 0) + '%';
    meter.className = 'meter-fill' + (ratio === 0 ? ' none' : ratio < 0.25 ? ' low' : '');
    setText('jobs-running', o['jobs-running']);
    setText('jobs-finished', o['jobs-finished']);
    setText('jobs-cancelled', o['jobs-cancelled']);
    setText('jobs-failed', o['jobs-failed']);
  }

  function renderTaskManagers(tms) {
    const body = $('tms-body');
    const rows = [];
    for (const tm of tms) {
      const tr = el('tr');
      const hw = tm.hardware || {};
      const age = Date.now() + state.skewMs - tm.timeSinceLastHeartbeat;
      tr.appendChild(el('td', 'mono', tm.id));
      tr.appendChild(el('td', 'mono', tmAddress(tm.path)));
      tr.appendChild(el('td', 'num', tm.slotsNumber));
      tr.appendChild(el('td', 'num', tm.freeSlots));
      const stale = state.heartbeatTimeoutMs > 0 && age > state.heartbeatTimeoutMs / 2;
      tr.appendChild(el('td', 'num' + (stale ? ' stale' : ''), fmtAge(tm.timeSinceLastHeartbeat)));
      tr.appendChild(el('td', 'num', hw.cpuCores > 0 ? hw.cpuCores : '–'));
      tr.appendChild(el('td', 'num', fmtBytes(hw.physicalMemory)));
      tr.appendChild(el('td', 'num', fmtBytes(hw.managedMemory)));
      rows.push(tr);
    }
    body.replaceChildren(...(rows.length ? rows : [emptyRow(8, 'No taskmanagers registered')]));
    setText('tms-count', tms.length ? '(' + tms.length + ')' : '');
  }

  function taskSummary(tasks) {
    if (!tasks || typeof tasks.total !== 'number') return '–';
    const done = tasks.finished || 0;
    return (tasks.running || 0) + ' running / ' + done + ' done / ' + tasks.total;
  }

  function renderJobs(jobs) {
    const body = $('jobs-body');
    const sorted = jobs.slice().sort((a, b) => (b['start-time'] || 0) - (a['start-time'] || 0));
    const rows = sorted.map((job) => {
      const tr = el('tr');
      tr.appendChild(el('td', null, job.name || '(unnamed)'));
      tr.appendChild(el('td', 'mono', job.jid));
      tr.appendChild(el('td', null, fmtTime(job['start-time'])));
      tr.appendChild(el('td', 'num', fmtDuration(job.duration)));
      tr.appendChild(el('td', 'num', taskSummary(job.tasks)));
      const td = el('td');
      const st = String(job.state || 'UNKNOWN').toUpperCase();
      td.appendChild(el('span', 'badge ' + st.replace(/[^A-Z_]/g, ''), st));
      tr.appendChild(td);
      return tr;
    });
    body.replaceChildren(...(rows.length ? rows : [emptyRow(6, 'No jobs yet')]));
    setText('jobs-count', jobs.length ? '(' + jobs.length + ')' : '');
  }

  function setStatus(ok, message) {
    const status = $('status');
    status.dataset.state = ok ? 'ok' : 'error';
    setText('status-text', ok ? 'Connected' : 'Unreachable');
    const banner = $('banner');
    banner.hidden = ok;
    if (!ok) banner.textContent = 'Cannot reach the jobmanager: ' + message +
      '. Showing the last data received; retrying every ' + fmtDuration(state.interval) + '.';
  }

  async function refresh() {
    try {
      const [overview, tms, jobs] = await Promise.all([
        getJSON('overview'), getJSON('taskmanagers'), getJSON('jobs/overview'),
      ]);
      renderOverview(overview);
      renderTaskManagers(tms.taskmanagers || []);
      renderJobs(jobs.jobs || []);
      setStatus(true);
      setText('updated', fmtTime(Date.now()).slice(11));
    } catch (e) {
      setStatus(false, e && e.message ? e.message : String(e));
    } finally {
      state.timer = setTimeout(refresh, state.interval);
    }
  }

  /* The heartbeat timeout, to flag taskmanagers whose heartbeats are late (best effort). */
  async function loadHeartbeatTimeout() {
    try {
      const entries = await getJSON('jobmanager/config');
      const e = entries.find((x) => x.key === 'heartbeat.timeout');
      const m = e && /^\s*(\d+)\s*(ms|s|min|h)?\s*$/.exec(e.value);
      if (m) state.heartbeatTimeoutMs = Number(m[1]) * ({ ms: 1, s: 1000, min: 60000, h: 3600000 }[m[2] || 'ms']);
    } catch (e) { /* optional */ }
  }

  async function init() {
    try {
      const config = await getJSON('config');
      const interval = Number(config['refresh-interval']);
      if (interval > 0) state.interval = Math.max(MIN_INTERVAL_MS, interval);
      const version = config['flint-version'] || config['flink-version'];
      if (version) setText('version', 'v' + version);
    } catch (e) { /* keep the default interval; refresh() reports the error */ }
    setText('refresh', fmtDuration(state.interval).replace(/^0s$/, state.interval + ' ms'));
    loadHeartbeatTimeout();
    refresh();
  }

  document.addEventListener('DOMContentLoaded', init);
})();
