#!/usr/bin/env node
/* The dashboard in a real browser (tests/cluster/test_dashboard.sh): starts Debian's chromium
 * headless and drives it over the Chrome DevTools Protocol on a pipe (--remote-debugging-pipe:
 * JSON messages separated by NUL bytes on fds 3 and 4), so it needs nothing but node itself.
 *
 *   node tests/browser/dashboard.js --url http://127.0.0.1:PORT/ --job JOBID --vertices N
 *        --source-name NAME --out DIR [--chromium /usr/bin/chromium]
 *
 * Loads the job's page of a cluster running a backpressured job and checks that the job graph
 * shows its N vertices with the source coloured HIGH, that the record counters grow between two
 * refreshes, and that the checkpoints and exceptions tabs render; saves screenshots into DIR.
 * Prints one line per case, "PASS <name>" or "FAIL <name>: <reason>", and exits 1 on a failure. */
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
  const a = { chromium: '/usr/bin/chromium', vertices: 0 };
  for (let i = 2; i < argv.length; i += 2) a[argv[i].replace(/^--/, '').replace(/-(.)/g, (m, c) => c.toUpperCase())] = argv[i + 1];
  a.vertices = Number(a.vertices);
  return a;
}

const args = parseArgs(process.argv);
let failures = 0;
const pass = (n) => console.log('PASS ' + n);
const fail = (n, why) => { failures++; console.log('FAIL ' + n + ': ' + String(why).replace(/\s+/g, ' ').slice(0, 400)); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---- a minimal CDP client over the pipe ---------------------------------------------------------- */
class Browser {
  constructor(exe, profile) {
    this.proc = spawn(exe, [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--user-data-dir=' + profile, '--remote-debugging-pipe', '--window-size=1440,1000',
      '--hide-scrollbars', '--mute-audio', '--disable-extensions', '--disable-dev-shm-usage', 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', () => {});
    this.out = this.proc.stdio[3];
    this.in = this.proc.stdio[4];
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    let buf = Buffer.alloc(0);
    this.in.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let z;
      while ((z = buf.indexOf(0)) >= 0) {
        const msg = JSON.parse(buf.slice(0, z).toString('utf8'));
        buf = buf.slice(z + 1);
        if (msg.id && this.pending.has(msg.id)) {
          const { resolve, reject } = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (msg.error) reject(new Error(msg.error.message)); else resolve(msg.result);
        } else if (msg.method) {
          for (const l of this.listeners) l(msg);
        }
      }
    });
    this.exited = new Promise((r) => this.proc.on('exit', r));
  }

  send(method, params, sessionId) {
    const id = this.nextId++;
    const msg = { id, method, params: params || {} };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.out.write(JSON.stringify(msg) + '\0');
      setTimeout(() => {
        if (this.pending.has(id)) { this.pending.delete(id); reject(new Error(method + ' timed out')); }
      }, 20000);
    });
  }

  async close() {
    try { await this.send('Browser.close'); } catch (e) { /* gone */ }
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

class Page {
  constructor(browser, sessionId) { this.b = browser; this.s = sessionId; }
  send(m, p) { return this.b.send(m, p, this.s); }
  async eval(expr) {
    const r = await this.send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception ? r.exceptionDetails.exception.description : r.exceptionDetails.text);
    return r.result.value;
  }
  /* Wait until expr is truthy; returns its value (or throws after timeout ms). */
  async waitFor(expr, timeout, what) {
    const end = Date.now() + timeout;
    let last;
    while (Date.now() < end) {
      try { last = await this.eval(expr); if (last) return last; } catch (e) { last = e.message; }
      await sleep(200);
    }
    throw new Error('timed out waiting for ' + (what || expr) + (last ? ' (last: ' + last + ')' : ''));
  }
  async goto(url) {
    await this.send('Page.navigate', { url });
  }
  async screenshot(file, fullPage) {
    let params = { format: 'png' };
    if (fullPage) {
      const m = await this.send('Page.getLayoutMetrics');
      const size = m.cssContentSize || m.contentSize;
      params = { format: 'png', captureBeyondViewport: true,
        clip: { x: 0, y: 0, width: Math.max(1440, Math.ceil(size.width)), height: Math.min(4000, Math.ceil(size.height)), scale: 1 } };
    }
    const r = await this.send('Page.captureScreenshot', params);
    fs.writeFileSync(file, Buffer.from(r.data, 'base64'));
  }
}

/* ---- the checks ----------------------------------------------------------------------------------- */
async function main() {
  for (const k of ['url', 'job', 'out', 'sourceName']) if (!args[k]) { fail('args', 'missing --' + k); process.exit(2); }
  fs.mkdirSync(args.out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flint-chromium-'));
  const browser = new Browser(args.chromium, profile);
  browser.proc.on('error', (e) => { fail('chromium_starts', e.message); process.exit(1); });
  const base = args.url.replace(/\/?$/, '/');
  const errors = [];
  try {
    const { targetId } = await browser.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await browser.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(browser, sessionId);
    browser.listeners.push((msg) => {
      if (msg.sessionId !== sessionId) return;
      if (msg.method === 'Runtime.exceptionThrown') errors.push(msg.params.exceptionDetails.exception
        ? msg.params.exceptionDetails.exception.description : msg.params.exceptionDetails.text);
      if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error' && !/favicon/.test(msg.params.entry.url || ''))
        errors.push(msg.params.entry.text + ' ' + (msg.params.entry.url || ''));
    });
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Log.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { width: 1440, height: 1000, deviceScaleFactor: 1, mobile: false });
    pass('chromium_starts');

    /* the overview */
    await page.goto(base + '#/overview');
    try {
      await page.waitFor(`document.querySelector('tr[data-job-id="${args.job}"]') !== null`, 15000, 'the job in the overview');
      const slots = await page.eval(`document.querySelector('.cards .card:nth-child(2) .big').textContent`);
      if (!/\d+\s*\/\s*\d+/.test(slots)) throw new Error('slots card shows "' + slots + '"');
      pass('overview_lists_job');
    } catch (e) { fail('overview_lists_job', e.message); }
    await page.screenshot(path.join(args.out, 'dashboard-overview.png'));

    /* the job graph */
    await page.goto(base + '#/job/' + args.job + '/overview');
    const n = args.vertices;
    let vertices = [];
    try {
      await page.waitFor(`document.querySelectorAll('svg.jobgraph g.vertex').length === ${n}`, 15000, n + ' vertex boxes');
      /* wait for the metrics to say the source is backpressured (they come with heartbeats) */
      const src = JSON.stringify(args.sourceName);
      await page.waitFor(`[...document.querySelectorAll('svg.jobgraph g.vertex')].some(g => g.dataset.name.startsWith(${src}) && g.dataset.backpressure === 'high')`,
        30000, 'the source coloured HIGH');
      vertices = await page.eval(`[...document.querySelectorAll('svg.jobgraph g.vertex')].map(g => ({
        id: g.dataset.vertexId, name: g.dataset.name, bp: g.dataset.backpressure, status: g.dataset.status,
        parallelism: g.dataset.parallelism, stroke: g.querySelector('rect.box').getAttribute('stroke'),
        head: g.querySelector('path.head').getAttribute('fill'),
        text: [...g.querySelectorAll('text')].map(t => t.textContent).join(' | ') }))`);
      const jobVertices = await (await fetch(base + 'jobs/' + args.job)).json();
      const names = jobVertices.vertices.map((v) => v.name).sort();
      const shown = vertices.map((v) => v.name).sort();
      if (JSON.stringify(names) !== JSON.stringify(shown)) throw new Error('graph shows ' + shown.join(', ') + '; job has ' + names.join(', '));
      pass('graph_shows_every_vertex');
    } catch (e) { fail('graph_shows_every_vertex', e.message); }
    try {
      const s = vertices.find((v) => v.name.startsWith(args.sourceName));
      if (!s) throw new Error('no vertex named ' + args.sourceName + '...');
      /* HIGH is red: more red than green and blue in its header colour */
      const rgb = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(s.head);
      const red = rgb && parseInt(rgb[1], 16) > 200 && parseInt(rgb[2], 16) < 100 && parseInt(rgb[3], 16) < 100;
      if (s.bp !== 'high' || !red || !/BACKPRESSURE HIGH/.test(s.text)) throw new Error(JSON.stringify(s));
      pass('source_coloured_high');
    } catch (e) { fail('source_coloured_high', e.message); }
    try {
      const edges = await page.eval(`[...document.querySelectorAll('svg.jobgraph g.edge')].map(g => g.dataset.shipStrategy + ':' + g.querySelector('text').textContent)`);
      if (edges.length < n - 1 || edges.some((e) => !/^[A-Z]+:[A-Z]+$/.test(e))) throw new Error('edges: ' + JSON.stringify(edges));
      const withParallelism = vertices.every((v) => /Parallelism: \d+/.test(v.text) && /RUNNING/.test(v.text));
      if (!withParallelism) throw new Error('a vertex box lacks its parallelism or status: ' + JSON.stringify(vertices.map((v) => v.text)));
      pass('graph_edges_labelled_and_boxes_complete');
    } catch (e) { fail('graph_edges_labelled_and_boxes_complete', e.message); }
    await page.screenshot(path.join(args.out, 'dashboard-job-graph.png'), true);

    /* record counters grow between two refreshes */
    try {
      const read = `(() => { let s = 0; for (const c of document.querySelectorAll('td[data-metric]')) s += Number(c.dataset.value); return s; })()`;
      const r0 = await page.eval('Number(document.body.dataset.refreshes || 0)');
      const c0 = await page.eval(read);
      await page.waitFor(`Number(document.body.dataset.refreshes || 0) >= ${r0 + 2}`, 20000, 'two more refreshes');
      const c1 = await page.eval(read);
      if (!(c1 > c0)) throw new Error('records shown went from ' + c0 + ' to ' + c1);
      pass('record_counters_increase');
    } catch (e) { fail('record_counters_increase', e.message); }

    /* the checkpoints tab: open it by clicking, as a person would */
    try {
      await page.eval(`document.querySelector('.tabs a[data-tab="checkpoints"]').click()`);
      await page.waitFor(`document.getElementById('checkpoints-tab') !== null`, 10000, 'the checkpoints tab');
      await page.waitFor(`document.querySelectorAll('#checkpoints-tab tr[data-checkpoint-id]').length > 0`, 20000, 'a checkpoint in the history');
      const completed = await page.eval(`Number(document.querySelector('#checkpoints-tab .cards .card:nth-child(3) .big').textContent)`);
      if (!(completed >= 1)) throw new Error('completed count shows ' + completed);
      pass('checkpoints_tab');
    } catch (e) { fail('checkpoints_tab', e.message); }
    await page.screenshot(path.join(args.out, 'dashboard-checkpoints.png'), true);

    try {
      await page.eval(`document.querySelector('.tabs a[data-tab="exceptions"]').click()`);
      await page.waitFor(`document.getElementById('exceptions-tab') !== null`, 10000, 'the exceptions tab');
      pass('exceptions_tab');
    } catch (e) { fail('exceptions_tab', e.message); }

    try {
      await page.goto(base + '#/taskmanagers');
      await page.waitFor(`document.querySelectorAll('tr[data-tm-id]').length > 0`, 10000, 'a taskmanager row');
      const seg = await page.eval(`document.querySelector('tr[data-tm-id] .bar.seg') !== null`);
      if (!seg) throw new Error('no network segments bar');
      pass('taskmanagers_page');
    } catch (e) { fail('taskmanagers_page', e.message); }
    await page.screenshot(path.join(args.out, 'dashboard-taskmanagers.png'));

    try {
      await page.eval(`document.querySelector('tr[data-tm-id] a').click()`);
      await page.waitFor(`(document.querySelector('pre.log') || {}).textContent && /INFO/.test(document.querySelector('pre.log').textContent)`,
        10000, "the taskmanager's log");
      pass('taskmanager_log_shown');
    } catch (e) { fail('taskmanager_log_shown', e.message); }
    await page.screenshot(path.join(args.out, 'dashboard-taskmanager.png'));

    if (errors.length) fail('no_javascript_errors', errors.slice(0, 3).join(' / ')); else pass('no_javascript_errors');
  } catch (e) {
    fail('browser', e.stack || e.message);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failures ? 1 : 0);
}

main();
