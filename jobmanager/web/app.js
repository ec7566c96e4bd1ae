/* Flint's web dashboard. Reads /config once, then renders the page of the current hash route and
 * refreshes it every refresh-interval:
 *   #/overview               cluster cards, running and completed jobs
 *   #/jobs                   every job
 *   #/job/<id>[/<tab>]       a job: graph + vertices (overview), checkpoints, exceptions
 *   #/taskmanagers           taskmanagers: slots, CPU, memory, network segments, heartbeat age
 *   #/taskmanager/<id>       one taskmanager: metrics and its log
 *   #/jobmanager             the jobmanager: metrics, configuration and its log
 * The DOM is built with textContent only: names and ids come from jobs and taskmanagers and are
 * never parsed as HTML. The job graph is an SVG laid out here: vertices in columns by their
 * distance from the sources, ordered to keep edges short, each box coloured by its backpressure
 * (OK green, LOW orange, HIGH red) with a busy bar, and the bottleneck marked. */
'use strict';

(function () {
  const MIN_INTERVAL_MS = 500;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const state = {
    interval: 3000, skewMs: 0, timer: null, heartbeatTimeoutMs: 0, cancelEnabled: false,
    route: null, generation: 0,
  };

  const $ = (id) => document.getElementById(id);

  /* ---- fetching ---------------------------------------------------------------------------------- */

  async function fetchRaw(path, opts) {
    const resp = await fetch(path, Object.assign({ cache: 'no-store' }, opts || {}));
    const date = Date.parse(resp.headers.get('Date') || '');
    if (!Number.isNaN(date)) {
      const skew = date - Date.now();
      state.skewMs = Math.abs(skew) > 2000 ? skew : 0;
    }
    return resp;
  }

  /* GET a JSON endpoint (a relative path: the page also works behind a path-prefix proxy). */
  async function getJSON(path) {
    const resp = await fetchRaw(path, { headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(path + ': HTTP ' + resp.status);
    return resp.json();
  }

  async function getOptional(path, fallback) {
    try { return await getJSON(path); } catch (e) { return fallback; }
  }

  /* ---- DOM helpers ---------------------------------------------------------------------------------- */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const k in attrs || {}) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function append(parent, ...children) {
    for (const c of children) if (c) parent.appendChild(c);
    return parent;
  }

  function setText(id, value) {
    const node = $(id);
    if (node) node.textContent = value;
  }

  function panel(title, count, right) {
    const p = el('section', 'panel');
    const head = el('div', 'panel-head');
    append(head, el('h2', null, title));
    if (count !== undefined && count !== null) append(head, el('span', 'count', count));
    if (right) { right.classList.add('right'); append(head, right); }
    append(p, head);
    return p;
  }

  function table(columns, rows, emptyText) {
    const wrap = el('div', 'table-wrap');
    const t = el('table');
    const thead = el('thead');
    const tr = el('tr');
    for (const c of columns) {
      const th = el('th', c.num ? 'num' : null, c.title);
      tr.appendChild(th);
    }
    thead.appendChild(tr);
    const tbody = el('tbody');
    if (!rows.length) {
      const r = el('tr', 'empty');
      const td = el('td', null, emptyText || 'Nothing to show');
      td.colSpan = columns.length;
      r.appendChild(td);
      tbody.appendChild(r);
    }
    for (const r of rows) tbody.appendChild(r);
    append(t, thead, tbody);
    wrap.appendChild(t);
    return wrap;
  }

  function td(text, className) { return el('td', className, text); }

  function badge(st) {
    const s = String(st || 'UNKNOWN').toUpperCase();
    return el('span', 'badge ' + s.replace(/[^A-Z_]/g, ''), s);
  }

  function levelTag(level) {
    const l = String(level || 'none').toLowerCase();
    return el('span', 'level ' + (['ok', 'low', 'high'].includes(l) ? l : 'none'), l === 'none' ? '–' : l.toUpperCase());
  }

  function bar(ratio, kind, label) {
    const wrap = el('span');
    const b = el('span', 'bar ' + (kind || ''));
    const fill = el('span');
    fill.style.width = Math.round(Math.max(0, Math.min(1, ratio || 0)) * 100) + '%';
    b.appendChild(fill);
    append(wrap, b, document.createTextNode(label || ''));
    return wrap;
  }

  /* ---- formatting ------------------------------------------------------------------------------------ */

  function fmtBytes(n) {
    if (typeof n !== 'number' || n < 0 || !Number.isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 || n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
  }

  function fmtCount(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
    if (Math.abs(n) < 1000) return String(Math.round(n));
    const units = ['', 'K', 'M', 'G', 'T'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + units[i];
  }

  function fmtRate(n) { return typeof n === 'number' && Number.isFinite(n) ? fmtCount(n) + '/s' : '–'; }

  function fmtDuration(ms) {
    if (typeof ms !== 'number' || ms < 0) return '–';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 10000) return (ms / 1000).toFixed(1) + 's';
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

  /* Watermarks: Long.MIN_VALUE (or anything that far) means none yet. */
  function fmtWatermark(v) {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= -9e15) return 'No watermark';
    if (n >= 9e15) return 'End of input';
    return fmtTime(n).slice(11) + '.' + String(Math.floor(n % 1000)).padStart(3, '0');
  }

  function tmAddress(path) {
    const m = /^[a-z]+:\/\/([^/]+)\//.exec(path || '');
    return m ? m[1] : (path || '–');
  }

  function bpLevel(msPerSecond) {
    if (typeof msPerSecond !== 'number') return 'none';
    const r = msPerSecond / 1000;
    return r <= 0.10 ? 'ok' : r <= 0.5 ? 'low' : 'high';
  }

  /* ---- status, refresh and routing ------------------------------------------------------------------- */

  function setStatus(ok, message) {
    const status = $('status');
    status.dataset.state = ok ? 'ok' : 'error';
    setText('status-text', ok ? 'Connected' : 'Unreachable');
    const banner = $('banner');
    banner.hidden = ok;
    if (!ok) banner.textContent = 'Cannot reach the jobmanager: ' + message +
      '. Showing the last data received; retrying every ' + fmtDuration(state.interval) + '.';
  }

  function parseRoute() {
    const parts = (location.hash || '#/overview').replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || 'overview', id: parts[1] || null, tab: parts[2] || 'overview' };
  }

  const pages = {
    overview: renderOverviewPage,
    jobs: renderJobsPage,
    job: renderJobPage,
    taskmanagers: renderTaskManagersPage,
    taskmanager: renderTaskManagerPage,
    jobmanager: renderJobManagerPage,
  };

  /* Render the current route now; later refreshes come every interval. A render that finishes
   * after the route changed is dropped. */
  async function refresh() {
    clearTimeout(state.timer);
    const gen = ++state.generation;
    const route = parseRoute();
    const key = route.page + '/' + (route.id || '') + '/' + route.tab;
    const fresh = state.route !== key;
    state.route = key;
    for (const a of document.querySelectorAll('.sidebar a')) {
      const nav = a.dataset.nav;
      a.classList.toggle('active', nav === route.page || (nav === 'jobs' && route.page === 'job') ||
        (nav === 'taskmanagers' && route.page === 'taskmanager'));
    }
    const fn = pages[route.page] || renderOverviewPage;
    try {
      const content = await fn(route, fresh);
      if (gen !== state.generation) return;
      if (content) {
        const page = $('page');
        const scroll = [...page.querySelectorAll('[data-keep-scroll]')].map((n) => [n.dataset.keepScroll, n.scrollLeft, n.scrollTop]);
        page.replaceChildren(content);
        for (const [k, l, t] of scroll) {
          const n = page.querySelector('[data-keep-scroll="' + k + '"]');
          if (n) { n.scrollLeft = l; n.scrollTop = t; }
        }
      }
      setStatus(true);
      setText('updated', fmtTime(Date.now()).slice(11));
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    } catch (e) {
      if (gen !== state.generation) return;
      setStatus(false, e && e.message ? e.message : String(e));
    } finally {
      if (gen === state.generation) state.timer = setTimeout(refresh, state.interval);
    }
  }

  /* ---- overview ---------------------------------------------------------------------------------------- */

  function card(title, value, sub, extraClass) {
    const c = el('div', 'card');
    append(c, el('div', 'card-title', title));
    if (value instanceof Node) c.appendChild(value);
    else append(c, el('div', 'big ' + (extraClass || ''), value));
    if (sub instanceof Node) c.appendChild(sub);
    else if (sub) c.appendChild(el('div', 'card-sub', sub));
    return c;
  }

  function jobRows(jobs) {
    return jobs.slice().sort((a, b) => (b['start-time'] || 0) - (a['start-time'] || 0)).map((job) => {
      const tr = el('tr', 'clickable');
      tr.dataset.jobId = job.jid;
      tr.addEventListener('click', () => { location.hash = '#/job/' + encodeURIComponent(job.jid); });
      const name = el('td');
      const a = el('a', null, job.name || '(unnamed)');
      a.href = '#/job/' + encodeURIComponent(job.jid);
      name.appendChild(a);
      const t = job.tasks || {};
      append(tr, name, td(job.jid, 'mono'), td(fmtTime(job['start-time'])), td(fmtDuration(job.duration), 'num'),
        td((t.running || 0) + ' / ' + (t.total || 0), 'num'));
      const st = el('td');
      st.appendChild(badge(job.state));
      tr.appendChild(st);
      return tr;
    });
  }

  const JOB_COLUMNS = [{ title: 'Job Name' }, { title: 'Job ID' }, { title: 'Start Time' },
    { title: 'Duration', num: true }, { title: 'Tasks running', num: true }, { title: 'Status' }];
  const TERMINAL = ['FINISHED', 'FAILED', 'CANCELED', 'SUSPENDED'];

  async function renderOverviewPage() {
    const [o, jobs] = await Promise.all([getJSON('overview'), getJSON('jobs/overview')]);
    const version = o['flint-version'] || o['flink-version'] || '';
    setText('version', version ? 'v' + version : '');
    setText('footer-version', 'Flint ' + version);
    const root = el('div');
    const cards = el('section', 'cards');
    const free = o['slots-available'], total = o['slots-total'];
    const slots = el('div');
    const big = el('div', 'big');
    append(big, document.createTextNode(String(free)), el('span', 'of', ' / ' + total));
    const meter = el('div', 'meter');
    const fill = el('div', 'meter-fill');
    const ratio = total > 0 ? free / total : 0;
    fill.style.width = Math.round(ratio * 100) + '%';
    if (ratio === 0) fill.classList.add('none'); else if (ratio < 0.25) fill.classList.add('low');
    meter.appendChild(fill);
    append(slots, big, meter, el('div', 'card-sub', Math.max(0, total - free) + ' in use'));
    const tally = el('div', 'tally');
    for (const [n, cls, lbl] of [[o['jobs-finished'], 'finished', 'Finished'], [o['jobs-cancelled'], 'cancelled', 'Cancelled'],
      [o['jobs-failed'], 'failed', 'Failed']]) {
      const d = el('div');
      append(d, el('span', 'num ' + cls, n), el('span', 'lbl', lbl));
      tally.appendChild(d);
    }
    append(cards,
      card('Task Managers', o.taskmanagers, 'registered with this jobmanager'),
      card('Available Task Slots', slots),
      card('Running Jobs', o['jobs-running'], 'right now', 'running'),
      card('Completed Jobs', tally));
    root.appendChild(cards);
    const all = jobs.jobs || [];
    const running = all.filter((j) => !TERMINAL.includes(j.state));
    const done = all.filter((j) => TERMINAL.includes(j.state));
    const p1 = panel('Running Jobs', running.length ? '(' + running.length + ')' : '');
    p1.appendChild(table(JOB_COLUMNS, jobRows(running), 'No running jobs'));
    const p2 = panel('Completed Jobs', done.length ? '(' + done.length + ')' : '');
    p2.appendChild(table(JOB_COLUMNS, jobRows(done), 'No completed jobs yet'));
    append(root, p1, p2);
    return root;
  }

  async function renderJobsPage() {
    const jobs = await getJSON('jobs/overview');
    const all = jobs.jobs || [];
    const root = el('div');
    root.appendChild(el('h1', 'page-title', 'Jobs'));
    const p = panel('All Jobs', all.length ? '(' + all.length + ')' : '');
    p.appendChild(table(JOB_COLUMNS, jobRows(all), 'No jobs yet'));
    root.appendChild(p);
    return root;
  }

  /* ---- a job ------------------------------------------------------------------------------------------- */

  /* Per vertex: records, rates, backpressure, busy time, watermark (from the aggregated subtask
   * metrics: one request per vertex). */
  const LIVE_METRICS = ['numRecordsInPerSecond', 'numRecordsOutPerSecond', 'backPressuredTimeMsPerSecond',
    'busyTimeMsPerSecond', 'idleTimeMsPerSecond', 'currentInputWatermark', 'inPoolUsage', 'outPoolUsage'];

  async function vertexLive(jid, v) {
    const url = 'jobs/' + jid + '/vertices/' + v.id + '/subtasks/metrics?get=' + LIVE_METRICS.join(',') + '&agg=min,max,sum';
    const arr = await getOptional(url, []);
    const m = {};
    for (const x of arr) m[x.id] = x;
    const get = (k, agg) => (m[k] && typeof m[k][agg] === 'number' ? m[k][agg] : undefined);
    const running = v.status === 'RUNNING';
    const bp = get('backPressuredTimeMsPerSecond', 'max');
    return {
      inRate: get('numRecordsInPerSecond', 'sum'),
      outRate: get('numRecordsOutPerSecond', 'sum'),
      bp, busy: get('busyTimeMsPerSecond', 'max'), idle: get('idleTimeMsPerSecond', 'min'),
      watermark: get('currentInputWatermark', 'min'),
      inPool: get('inPoolUsage', 'max'), outPool: get('outPoolUsage', 'max'),
      level: running && typeof bp === 'number' ? bpLevel(bp) : 'none',
    };
  }

  /* The bottleneck: a running vertex that is busy (>= 50%) and not itself backpressured, fed
   * (directly) by a vertex that is backpressured HIGH or LOW. The busiest such vertex wins. */
  function findBottleneck(vertices, live, inputs) {
    let best = null, bestBusy = -1;
    for (const v of vertices) {
      const l = live[v.id];
      if (!l || v.status !== 'RUNNING' || typeof l.busy !== 'number' || l.busy < 500 || l.level === 'high') continue;
      const ups = inputs[v.id] || [];
      if (!ups.some((u) => live[u.id] && (live[u.id].level === 'high' || live[u.id].level === 'low'))) continue;
      if (l.busy > bestBusy) { best = v.id; bestBusy = l.busy; }
    }
    return best;
  }

  const BP_COLORS = {
    ok: { stroke: '#52c41a', fill: '#f6ffed', head: '#52c41a' },
    low: { stroke: '#fa8c16', fill: '#fff7e6', head: '#fa8c16' },
    high: { stroke: '#f5222d', fill: '#fff1f0', head: '#f5222d' },
    none: { stroke: '#bfbfbf', fill: '#fafafa', head: '#8c8c8c' },
  };

  /* Split a long name in at most two lines of about max characters. */
  function nameLines(name, max) {
    const words = String(name).split(/(?<=\s|->)/);
    const lines = [''];
    for (const w of words) {
      const cur = lines[lines.length - 1];
      if ((cur + w).length > max && cur) {
        if (lines.length === 2) { lines[1] = (lines[1] + w).slice(0, max - 1) + '…'; break; }
        lines.push(w.trimStart());
      } else lines[lines.length - 1] = cur + w;
    }
    return lines.map((l) => (l.length > max ? l.slice(0, max - 1) + '…' : l.trim()));
  }

  /* Lay out and draw the job graph: columns by longest path from a source, rows ordered by the
   * mean row of their inputs (barycenter), edges as curves labelled with their partitioner. */
  function drawGraph(job, plan, live, bottleneck) {
    const W = 270, H = 136, GX = 110, GY = 44, PAD = 34;
    const vertices = job.vertices || [];
    const inputs = {};
    for (const n of (plan && plan.nodes) || []) inputs[n.id] = n.inputs || [];
    const layer = {};
    const visit = (id, seen) => {
      if (layer[id] !== undefined) return layer[id];
      if (seen.has(id)) return 0;
      seen.add(id);
      let l = 0;
      for (const i of inputs[id] || []) l = Math.max(l, visit(i.id, seen) + 1);
      layer[id] = l;
      return l;
    };
    for (const v of vertices) visit(v.id, new Set());
    const columns = [];
    for (const v of vertices) (columns[layer[v.id]] = columns[layer[v.id]] || []).push(v);
    const row = {};
    columns.forEach((col, ci) => {
      if (ci > 0) {
        const bary = (v) => {
          const ins = (inputs[v.id] || []).map((i) => row[i.id]).filter((r) => r !== undefined);
          return ins.length ? ins.reduce((a, b) => a + b, 0) / ins.length : 0;
        };
        col.sort((a, b) => bary(a) - bary(b));
      }
      col.forEach((v, i) => { row[v.id] = i; });
    });
    const maxRows = Math.max(1, ...columns.map((c) => c.length));
    const width = PAD * 2 + columns.length * W + (columns.length - 1) * GX;
    const height = PAD * 2 + maxRows * H + (maxRows - 1) * GY;
    const pos = {};
    columns.forEach((col, ci) => {
      const colH = col.length * H + (col.length - 1) * GY;
      const y0 = PAD + (height - 2 * PAD - colH) / 2;
      col.forEach((v, i) => { pos[v.id] = { x: PAD + ci * (W + GX), y: y0 + i * (H + GY) }; });
    });

    const s = svg('svg', { class: 'jobgraph', width, height, viewBox: '0 0 ' + width + ' ' + height, role: 'img',
      'aria-label': 'Job graph' });
    const defs = svg('defs');
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8c9bb0' }));
    defs.appendChild(marker);
    s.appendChild(defs);

    /* edges first, under the boxes */
    for (const v of vertices) {
      (inputs[v.id] || []).forEach((inp, k) => {
        const a = pos[inp.id], b = pos[v.id];
        if (!a || !b) return;
        const n = (inputs[v.id] || []).length;
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2 + (n > 1 ? (k - (n - 1) / 2) * 18 : 0);
        const mx = (x1 + x2) / 2;
        const g = svg('g', { class: 'edge', 'data-from': inp.id, 'data-to': v.id, 'data-ship-strategy': inp.ship_strategy || '' });
        g.appendChild(svg('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' }));
        const label = String(inp.ship_strategy || '').toUpperCase();
        if (label) {
          const lw = label.length * 7 + 14, ly = (y1 + y2) / 2;
          g.appendChild(svg('rect', { x: mx - lw / 2, y: ly - 10, width: lw, height: 20, rx: 10 }));
          g.appendChild(svg('text', { x: mx, y: ly + 4, 'text-anchor': 'middle', class: 'elabel' }, label));
        }
        s.appendChild(g);
      });
    }

    for (const v of vertices) {
      const p = pos[v.id];
      const l = live[v.id] || { level: 'none' };
      const col = BP_COLORS[l.level] || BP_COLORS.none;
      const isBottleneck = bottleneck === v.id;
      const g = svg('g', { class: 'vertex bp-' + l.level + (isBottleneck ? ' bottleneck' : ''), transform: `translate(${p.x},${p.y})`,
        'data-vertex-id': v.id, 'data-name': v.name, 'data-backpressure': l.level, 'data-status': v.status,
        'data-parallelism': v.parallelism });
      g.appendChild(svg('title', {}, v.name + ' — backpressure ' + l.level.toUpperCase() +
        (typeof l.busy === 'number' ? ', busy ' + Math.round(l.busy / 10) + '%' : '')));
      g.appendChild(svg('rect', { class: 'box', width: W, height: H, rx: 8, fill: col.fill, stroke: isBottleneck ? '#1f2329' : col.stroke,
        'stroke-width': isBottleneck ? 3 : 2 }));
      /* header: the backpressure level, big and coloured */
      g.appendChild(svg('path', { d: `M0,8 a8,8 0 0 1 8,-8 h${W - 16} a8,8 0 0 1 8,8 v14 h-${W} z`, fill: col.head, class: 'head' }));
      const bpText = l.level === 'none' ? 'NO METRICS YET' : 'BACKPRESSURE ' + l.level.toUpperCase() +
        (typeof l.bp === 'number' ? ' · ' + Math.round(l.bp / 10) + '%' : '');
      g.appendChild(svg('text', { x: 10, y: 15, class: 'head-text' }, bpText));
      const lines = nameLines(v.name, 33);
      lines.forEach((line, i) => g.appendChild(svg('text', { x: 10, y: 40 + i * 16, class: 'name' }, line)));
      const y = 40 + lines.length * 16 + 2;
      const ins = (inputs[v.id] || []).length > 0, outs = vertices.some((o) => (inputs[o.id] || []).some((i) => i.id === v.id));
      const rates = (ins ? 'in ' + fmtRate(l.inRate) : '') + (ins && outs ? ' · ' : '') + (outs ? 'out ' + fmtRate(l.outRate) : '');
      g.appendChild(svg('text', { x: 10, y, class: 'sub' }, 'Parallelism: ' + v.parallelism + ' · ' + v.status));
      g.appendChild(svg('text', { x: W - 10, y, class: 'sub rate', 'text-anchor': 'end' }, rates));
      g.appendChild(svg('text', { x: 10, y: y + 16, class: 'sub' }, 'Watermark: ' + fmtWatermark(l.watermark)));
      /* busy bar along the bottom: how much of each second the vertex works */
      const busy = typeof l.busy === 'number' ? l.busy / 1000 : 0;
      g.appendChild(svg('rect', { x: 10, y: H - 16, width: W - 20, height: 7, rx: 3.5, fill: '#eef0f3' }));
      const hue = Math.round(120 - 120 * busy);
      g.appendChild(svg('rect', { x: 10, y: H - 16, width: Math.max(0, (W - 20) * busy), height: 7, rx: 3.5,
        fill: `hsl(${hue}, 80%, 48%)`, class: 'busy-bar' }));
      g.appendChild(svg('text', { x: W - 10, y: H - 21, class: 'sub', 'text-anchor': 'end' },
        'busy ' + (typeof l.busy === 'number' ? Math.round(l.busy / 10) + '%' : '–')));
      if (isBottleneck) {
        const tw = 104;
        g.appendChild(svg('rect', { x: W - tw, y: -27, width: tw, height: 20, rx: 10, fill: '#1f2329' }));
        g.appendChild(svg('text', { x: W - tw / 2, y: -13, class: 'tag-text', 'text-anchor': 'middle' }, '⚠ BOTTLENECK'));
      }
      g.addEventListener('click', () => {
        const rowEl = document.querySelector('tr[data-vertex-id="' + v.id + '"]');
        if (rowEl) rowEl.scrollIntoView({ behavior: 'smooth', block: 'center' });
      });
      s.appendChild(g);
    }
    return s;
  }

  function jobHeader(job, tab) {
    const head = el('div', 'job-head');
    const row = el('div', 'row');
    append(row, el('h1', null, job.name), badge(job.state));
    const actions = el('div', 'actions');
    if (state.cancelEnabled && !TERMINAL.includes(job.state) && job.state !== 'CANCELLING') {
      const b = el('button', 'danger', 'Cancel Job');
      b.id = 'cancel-job';
      b.addEventListener('click', async () => {
        if (!confirm('Cancel job "' + job.name + '"?')) return;
        b.disabled = true;
        try {
          const r = await fetchRaw('jobs/' + job.jid + '?mode=cancel', { method: 'PATCH' });
          if (!r.ok) throw new Error('HTTP ' + r.status);
        } catch (e) { alert('Cancel failed: ' + e.message); }
        refresh();
      });
      actions.appendChild(b);
    }
    row.appendChild(actions);
    head.appendChild(row);
    const meta = el('div', 'meta');
    const item = (k, v, cls) => { const s = el('span'); append(s, document.createTextNode(k + ' '), el('b', cls, v)); return s; };
    append(meta, item('ID', job.jid, 'mono'), item('Started', fmtTime(job['start-time'])),
      item('Duration', fmtDuration(job.duration)), item('Parallel tasks', String((job.vertices || []).reduce((a, v) => a + v.parallelism, 0))));
    if (job['end-time'] > 0) meta.appendChild(item('Ended', fmtTime(job['end-time'])));
    head.appendChild(meta);
    const tabs = el('nav', 'tabs');
    for (const [id, title] of [['overview', 'Overview'], ['checkpoints', 'Checkpoints'], ['exceptions', 'Exceptions']]) {
      const a = el('a', tab === id ? 'active' : null, title);
      a.href = '#/job/' + encodeURIComponent(job.jid) + '/' + id;
      a.dataset.tab = id;
      tabs.appendChild(a);
    }
    head.appendChild(tabs);
    return head;
  }

  async function renderJobPage(route) {
    const jid = route.id;
    const job = await getJSON('jobs/' + encodeURIComponent(jid));
    const root = el('div');
    root.dataset.jobId = job.jid;
    root.appendChild(jobHeader(job, route.tab));
    if (route.tab === 'checkpoints') root.appendChild(await checkpointsTab(job));
    else if (route.tab === 'exceptions') root.appendChild(await exceptionsTab(job));
    else root.appendChild(await jobOverviewTab(job));
    return root;
  }

  async function jobOverviewTab(job) {
    const vertices = job.vertices || [];
    const [plan, lives] = await Promise.all([
      getOptional('jobs/' + job.jid + '/plan', { plan: job.plan }),
      Promise.all(vertices.map((v) => vertexLive(job.jid, v))),
    ]);
    const live = {};
    vertices.forEach((v, i) => { live[v.id] = lives[i]; });
    const inputs = {};
    for (const n of (plan.plan && plan.plan.nodes) || []) inputs[n.id] = n.inputs || [];
    const bottleneck = findBottleneck(vertices, live, inputs);
    const root = el('div');
    const legend = el('div', 'legend');
    for (const [cls, txt] of [['ok', 'Backpressure OK (≤ 10%)'], ['low', 'LOW (≤ 50%)'], ['high', 'HIGH (> 50%)'], ['busy', 'busy bar: share of each second spent working']]) {
      const s = el('span');
      append(s, el('span', 'sw ' + cls), document.createTextNode(txt));
      legend.appendChild(s);
    }
    const gp = panel('Job Graph', bottleneck ? 'bottleneck: ' + (vertices.find((v) => v.id === bottleneck) || {}).name : '', legend);
    const wrap = el('div', 'graph-wrap');
    wrap.dataset.keepScroll = 'graph';
    wrap.appendChild(drawGraph(job, plan.plan, live, bottleneck));
    gp.appendChild(wrap);
    root.appendChild(gp);

    const cols = [{ title: 'Name' }, { title: 'Status' }, { title: 'Parallelism', num: true },
      { title: 'Records Received', num: true }, { title: 'Records Sent', num: true }, { title: 'In / s', num: true },
      { title: 'Out / s', num: true }, { title: 'Backpressure' }, { title: 'Busy' },
      { title: 'Watermark' }];
    const rows = vertices.map((v) => {
      const l = live[v.id] || {};
      const m = v.metrics || {};
      const tr = el('tr');
      tr.dataset.vertexId = v.id;
      const st = el('td');
      st.appendChild(badge(v.status));
      const recIn = td(fmtCount(m['read-records']), 'num');
      recIn.dataset.metric = 'read-records';
      recIn.dataset.value = String(m['read-records'] || 0);
      const recOut = td(fmtCount(m['write-records']), 'num');
      recOut.dataset.metric = 'write-records';
      recOut.dataset.value = String(m['write-records'] || 0);
      const bpCell = el('td');
      bpCell.appendChild(levelTag(l.level));
      if (typeof l.bp === 'number' && l.level !== 'none') bpCell.appendChild(document.createTextNode(' ' + Math.round(l.bp / 10) + '%'));
      const busy = el('td');
      busy.appendChild(typeof l.busy === 'number' && v.status === 'RUNNING' ? bar(l.busy / 1000, 'busy', Math.round(l.busy / 10) + '%') : document.createTextNode('–'));
      append(tr, td(v.name, 'wrap vname'), st, td(v.parallelism, 'num'), recIn, recOut, td(fmtRate(l.inRate), 'num'),
        td(fmtRate(l.outRate), 'num'), bpCell, busy,
        td(/^No/.test(fmtWatermark(l.watermark)) ? '–' : fmtWatermark(l.watermark)));
      return tr;
    });
    const vp = panel('Vertices', '(' + vertices.length + ')');
    vp.appendChild(table(cols, rows, 'No vertices'));
    root.appendChild(vp);
    return root;
  }

  async function checkpointsTab(job) {
    const [cp, cfg] = await Promise.all([getJSON('jobs/' + job.jid + '/checkpoints'),
      getOptional('jobs/' + job.jid + '/checkpoints/config', null)]);
    const root = el('div');
    root.id = 'checkpoints-tab';
    const c = cp.counts || {};
    const cards = el('section', 'cards');
    append(cards,
      card('Triggered', c.total, 'checkpoints and savepoints'),
      card('In Progress', c.in_progress, null, 'running'),
      card('Completed', c.completed, null),
      card('Failed', c.failed, null),
      card('Restored', c.restored, null));
    cards.children[2].querySelector('.big').classList.add('ok-text');
    if (c.failed > 0) cards.children[3].querySelector('.big').style.color = 'var(--failed)';
    root.appendChild(cards);

    const latest = cp.latest || {};
    const two = el('div', 'two');
    const lc = panel('Latest Completed Checkpoint');
    const body = el('div', 'panel-body');
    const kv = (pairs) => {
      const dl = el('dl', 'kv');
      for (const [k, v] of pairs) append(dl, el('dt', null, k), el('dd', null, v));
      return dl;
    };
    if (latest.completed) {
      const l = latest.completed;
      body.appendChild(kv([['ID', '#' + l.id], ['Completed', fmtTime(l.latest_ack_timestamp) + ' (' + fmtAge(l.latest_ack_timestamp) + ')'],
        ['End to end duration', fmtDuration(l.end_to_end_duration)], ['Checkpointed size', fmtBytes(l.checkpointed_size)],
        ['Full state size', fmtBytes(l.state_size)], ['Type', l.checkpoint_type], ['Path', l.external_path || '–']]));
    } else body.appendChild(el('div', 'muted', 'No checkpoint completed yet.'));
    lc.appendChild(body);
    const cfgP = panel('Configuration');
    const cb = el('div', 'panel-body');
    if (cfg) {
      const interval = cfg.interval >= 9e15 ? 'disabled' : fmtDuration(cfg.interval);
      cb.appendChild(kv([['Mode', String(cfg.mode || '').replace(/_/g, ' ')], ['Interval', interval],
        ['Timeout', fmtDuration(cfg.timeout)], ['Min pause', fmtDuration(cfg.min_pause)],
        ['Max concurrent', String(cfg.max_concurrent)], ['State backend', cfg.state_backend || '–'],
        ['Failed', latest.failed ? '#' + latest.failed.id + ' ' + (latest.failed.failure_message || '') : 'none']]));
    } else cb.appendChild(el('div', 'muted', 'No configuration.'));
    cfgP.appendChild(cb);
    append(two, lc, cfgP);
    root.appendChild(two);

    const hist = cp.history || [];
    const maxDur = Math.max(1, ...hist.map((h) => h.end_to_end_duration || 0));
    const rows = hist.map((h) => {
      const tr = el('tr');
      tr.dataset.checkpointId = h.id;
      const st = el('td');
      st.appendChild(badge(h.status));
      const dur = el('td');
      dur.appendChild(bar((h.end_to_end_duration || 0) / maxDur, 'dur', fmtDuration(h.end_to_end_duration)));
      append(tr, td('#' + h.id, 'mono'), st, td(h.is_savepoint ? 'Savepoint' : 'Checkpoint'), td(fmtTime(h.trigger_timestamp)),
        td(fmtAge(h.latest_ack_timestamp > 0 ? h.latest_ack_timestamp : h.trigger_timestamp)),
        td(h.num_acknowledged_subtasks + ' / ' + h.num_subtasks, 'num'), dur, td(fmtBytes(h.checkpointed_size), 'num'),
        td(fmtBytes(h.state_size), 'num'));
      return tr;
    });
    const hp = panel('History', hist.length ? '(latest ' + hist.length + ')' : '');
    hp.appendChild(table([{ title: 'ID' }, { title: 'Status' }, { title: 'Type' }, { title: 'Triggered' }, { title: 'Last ack' },
      { title: 'Acknowledged', num: true }, { title: 'Duration' }, { title: 'Checkpointed Size', num: true },
      { title: 'Full Size', num: true }], rows, 'No checkpoints yet (execution.checkpointing.interval)'));
    hp.style.marginTop = '24px';
    root.appendChild(hp);
    return root;
  }

  async function exceptionsTab(job) {
    const x = await getJSON('jobs/' + job.jid + '/exceptions?maxExceptions=20');
    const root = el('div');
    root.id = 'exceptions-tab';
    const rp = panel('Root Exception');
    const body = el('div', 'panel-body');
    if (x['root-exception']) {
      body.appendChild(el('div', 'muted', fmtTime(x.timestamp)));
      const pre = el('pre', 'trace', x['root-exception']);
      pre.style.marginTop = '8px';
      body.appendChild(pre);
    } else body.appendChild(el('div', 'ok-text', 'No exceptions: the job has not failed.'));
    rp.appendChild(body);
    root.appendChild(rp);
    const entries = (x.exceptionHistory && x.exceptionHistory.entries) || [];
    const rows = [];
    for (const e of entries) {
      const tr = el('tr');
      append(tr, td(fmtTime(e.timestamp)), td(e.exceptionName), td(e.taskName || '(job)'), td(e.location || '–', 'mono'),
        td(String(e.stacktrace || '').split('\n')[0], 'wrap'));
      rows.push(tr);
      for (const cx of e.concurrentExceptions || []) {
        const t2 = el('tr');
        append(t2, td('  ↳ ' + fmtTime(cx.timestamp), 'muted'), td(cx.exceptionName), td(cx.taskName || '(job)'),
          td(cx.location || '–', 'mono'), td(String(cx.stacktrace || '').split('\n')[0], 'wrap'));
        rows.push(t2);
      }
    }
    const hp = panel('Exception History', entries.length ? '(' + entries.length + ')' : '');
    hp.appendChild(table([{ title: 'Time' }, { title: 'Exception' }, { title: 'Task' }, { title: 'Location' }, { title: 'Message' }],
      rows, 'No failures'));
    root.appendChild(hp);
    return root;
  }

  /* ---- taskmanagers ------------------------------------------------------------------------------------ */

  function tmRow(tm) {
    const hw = tm.hardware || {};
    const m = tm.metrics || {};
    const tr = el('tr', 'clickable');
    tr.dataset.tmId = tm.id;
    tr.addEventListener('click', () => { location.hash = '#/taskmanager/' + encodeURIComponent(tm.id); });
    const idc = el('td', 'mono');
    const a = el('a', null, tm.id);
    a.href = '#/taskmanager/' + encodeURIComponent(tm.id);
    idc.appendChild(a);
    const age = Date.now() + state.skewMs - tm.timeSinceLastHeartbeat;
    const stale = state.heartbeatTimeoutMs > 0 && age > state.heartbeatTimeoutMs / 2;
    const seg = el('td');
    const total = m.nettyShuffleMemorySegmentsTotal || 0, used = m.nettyShuffleMemorySegmentsUsed || 0;
    seg.appendChild(total > 0 ? bar(used / total, 'seg', used + ' / ' + total) : document.createTextNode('–'));
    const slots = el('td');
    slots.appendChild(bar(tm.slotsNumber > 0 ? (tm.slotsNumber - tm.freeSlots) / tm.slotsNumber : 0, '',
      (tm.slotsNumber - tm.freeSlots) + ' / ' + tm.slotsNumber + ' used'));
    append(tr, idc, td(tmAddress(tm.path), 'mono'), slots, td(fmtAge(tm.timeSinceLastHeartbeat), 'num' + (stale ? ' stale' : '')),
      td(typeof m.cpuLoad === 'number' ? Math.round(m.cpuLoad * 100) + '%' : '–', 'num'),
      td(hw.cpuCores > 0 ? hw.cpuCores : '–', 'num'), td(fmtBytes(m.rss), 'num'),
      td(fmtBytes(hw.physicalMemory), 'num'), seg);
    return tr;
  }

  async function renderTaskManagersPage() {
    const tms = (await getJSON('taskmanagers')).taskmanagers || [];
    const root = el('div');
    root.appendChild(el('h1', 'page-title', 'Task Managers'));
    const p = panel('Task Managers', tms.length ? '(' + tms.length + ')' : '');
    p.appendChild(table([{ title: 'ID' }, { title: 'Address' }, { title: 'Slots' }, { title: 'Last Heartbeat', num: true },
      { title: 'CPU', num: true }, { title: 'Cores', num: true }, { title: 'Memory (RSS)', num: true },
      { title: 'Physical Memory', num: true }, { title: 'Network Segments' }], tms.map(tmRow), 'No taskmanagers registered'));
    root.appendChild(p);
    return root;
  }

  function metricsPanel(title, arr) {
    const p = panel(title, '(' + arr.length + ')');
    const rows = arr.slice().sort((a, b) => a.id.localeCompare(b.id)).map((m) => {
      const tr = el('tr');
      append(tr, td(m.id, 'mono'), td(m.value, 'num mono'));
      return tr;
    });
    p.appendChild(table([{ title: 'Metric' }, { title: 'Value', num: true }], rows, 'No metrics reported yet'));
    return p;
  }

  async function allMetrics(base) {
    const ids = await getJSON(base);
    if (!ids.length) return [];
    return getJSON(base + '?get=' + ids.map((x) => encodeURIComponent(x.id)).join(','));
  }

  function logPanel(title, url, fresh) {
    const p = panel(title);
    const pre = el('pre', 'log', 'Loading…');
    pre.dataset.keepScroll = 'log';
    const btn = el('button', 'plain', 'Reload');
    const load = async () => {
      try {
        const r = await fetchRaw(url);
        const text = await r.text();
        if (!r.ok) {
          let msg = text;
          try { msg = (JSON.parse(text).errors || [text]).join('; '); } catch (e) { /* text */ }
          pre.textContent = msg;
        } else {
          pre.textContent = text || '(empty)';
          pre.scrollTop = pre.scrollHeight;
        }
        state.logCache[url] = pre.textContent;
      } catch (e) { pre.textContent = 'Cannot load the log: ' + e.message; }
    };
    btn.addEventListener('click', load);
    p.querySelector('.panel-head').appendChild(btn);
    btn.classList.add('right');
    if (fresh || state.logCache[url] === undefined) load(); else pre.textContent = state.logCache[url];
    p.appendChild(pre);
    return p;
  }
  state.logCache = {};

  async function renderTaskManagerPage(route, fresh) {
    const id = route.id;
    const [tm, metrics] = await Promise.all([getJSON('taskmanagers/' + encodeURIComponent(id)),
      allMetrics('taskmanagers/' + encodeURIComponent(id) + '/metrics').catch(() => [])]);
    const m = tm.metrics || {};
    const hw = tm.hardware || {};
    const root = el('div');
    root.appendChild(el('h1', 'page-title', 'Task Manager ' + tm.id));
    const cards = el('section', 'cards');
    const total = m.nettyShuffleMemorySegmentsTotal || 0, used = m.nettyShuffleMemorySegmentsUsed || 0;
    append(cards,
      card('Slots', (tm.slotsNumber - tm.freeSlots) + ' / ' + tm.slotsNumber, 'in use'),
      card('CPU', typeof m.cpuLoad === 'number' ? Math.round(m.cpuLoad * 100) + '%' : '–', (hw.cpuCores || '?') + ' cores, ' + (m.threads || '?') + ' threads'),
      card('Memory (RSS)', fmtBytes(m.rss), 'of ' + fmtBytes(hw.physicalMemory) + ' physical'),
      card('Network Segments', used + ' / ' + total, fmtBytes(m.nettyShuffleMemoryUsed) + ' of ' + fmtBytes(m.nettyShuffleMemoryTotal) + ' in use'),
      card('Last Heartbeat', fmtAge(tm.timeSinceLastHeartbeat), 'up ' + fmtDuration(tm.uptime)));
    for (const c of cards.querySelectorAll('.big')) c.classList.add('small');
    root.appendChild(cards);
    root.appendChild(metricsPanel('Metrics', metrics));
    root.appendChild(logPanel('Log', 'taskmanagers/' + encodeURIComponent(id) + '/log', fresh));
    return root;
  }

  async function renderJobManagerPage(route, fresh) {
    const [metrics, config] = await Promise.all([allMetrics('jobmanager/metrics'), getJSON('jobmanager/config')]);
    const root = el('div');
    root.appendChild(el('h1', 'page-title', 'Job Manager'));
    const two = el('div', 'two');
    const cp = panel('Configuration', '(' + config.length + ')');
    cp.appendChild(table([{ title: 'Key' }, { title: 'Value' }], config.map((e) => {
      const tr = el('tr');
      append(tr, td(e.key, 'mono'), td(e.value, 'mono wrap'));
      return tr;
    })));
    append(two, metricsPanel('Metrics', metrics), cp);
    root.appendChild(two);
    const lp = logPanel('Log', 'jobmanager/log', fresh);
    lp.style.marginTop = '24px';
    root.appendChild(lp);
    return root;
  }

  /* ---- start --------------------------------------------------------------------------------------------- */

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
      if (version) { setText('version', 'v' + version); setText('footer-version', 'Flint ' + version); }
      state.cancelEnabled = !!(config.features && config.features['web-cancel']);
    } catch (e) { /* keep the defaults; refresh() reports the error */ }
    setText('refresh', fmtDuration(state.interval));
    loadHeartbeatTimeout();
    window.addEventListener('hashchange', () => { state.route = null; refresh(); });
    refresh();
  }

  document.addEventListener('DOMContentLoaded', init);
})();
