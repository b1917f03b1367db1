// synapse-p2p dashboard: reads this node's JSON API, follows GET /events
// (Server-Sent Events) to re-read what changed, and sends operator actions.
// No framework and no build step; every value from the API is inserted as
// text (never as HTML).
'use strict';
(() => {
  const CSRF = { 'X-Synapse-Request': '1' };
  const TOKEN_KEY = 'synapse-api-token';

  const state = {
    id: null, status: null, proposals: [], log: [], validators: null, peers: [], fetches: [],
    // voteSeen remembers, per proposal and voter, the effective votes this
    // page has seen: the node drops a superseded vote from its op set, so
    // only a page that saw the earlier one can still show it (greyed).
    voteSeen: new Map(),
    results: new Map(), // action results by key, kept across re-renders
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    tokenRequired: document.querySelector('meta[name="synapse-token-required"]').content === 'true',
  };

  // ---- small DOM helpers -------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const $ = (sel) => document.querySelector(sel);
  const short = (s, n = 8) => (s && s.length > n + 2 ? s.slice(0, n) + '…' : s || '');
  const peerShort = (id) => (id && id.length > 14 ? '…' + id.slice(-8) : id || '');
  const num = (x) => (Math.round(x * 100) / 100).toString();
  const pct = (x) => (Math.round(x * 1000) / 10).toString() + '%';
  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    const m = Math.floor(s / 60), r = s % 60;
    if (m >= 60) return Math.floor(m / 60) + 'h ' + (m % 60) + 'm';
    return m + ':' + String(r).padStart(2, '0');
  }
  function peerName(id) {
    if (!id) return '';
    return id === (state.id && state.id.id) ? peerShort(id) + ' (this node)' : peerShort(id);
  }
  function peerCode(id) { return h('code', { title: id }, peerName(id)); }

  // ---- API ---------------------------------------------------------------
  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(method, path, body, opts = {}) {
    if (method !== 'GET' && state.tokenRequired && !state.token && !opts.retried) {
      if (!(await askToken('This node requires its API token for actions'))) {
        throw new APIError(401, 'No token given: this node requires its API token for actions.');
      }
    }
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') Object.assign(headers, CSRF);
    if (method !== 'GET' && state.token) headers.Authorization = 'Bearer ' + state.token;
    let payload;
    if (body instanceof Blob) { payload = body; headers['Content-Type'] = 'application/octet-stream'; }
    else if (body !== undefined) { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
    const resp = await fetch(path, { method, headers, body: payload, cache: 'no-store', credentials: 'same-origin' });
    let data = null;
    const text = await resp.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!resp.ok) {
      const msg = (data && data.error) ? data.error : (resp.status + ' ' + resp.statusText);
      if (resp.status === 401 && method !== 'GET' && !opts.retried) {
        if (await askToken('The node answered: ' + msg)) return api(method, path, body, { retried: true });
      }
      throw new APIError(resp.status, msg);
    }
    return data;
  }

  // ---- token -------------------------------------------------------------
  let tokenWaiter = null, returnFocus = null;
  function askToken(why) {
    const dlg = $('#token-dialog');
    if (!dlg.open) returnFocus = document.activeElement;
    const hint = dlg.querySelector('.hint');
    hint.dataset.base = hint.dataset.base || hint.textContent;
    hint.textContent = (why ? why + '. ' : '') + hint.dataset.base;
    $('#token-input').value = state.token;
    if (!dlg.open) dlg.showModal();
    $('#token-input').focus();
    return new Promise((resolve) => { tokenWaiter = resolve; });
  }
  function closeToken(ok) {
    const dlg = $('#token-dialog');
    if (dlg.open) dlg.close();
    if (tokenWaiter) { const w = tokenWaiter; tokenWaiter = null; w(ok); }
    renderTokenState();
    const back = returnFocus && returnFocus.isConnected ? returnFocus : $('#token-button');
    returnFocus = null;
    back.focus();
  }
  function renderTokenState() {
    const p = $('#token-state');
    if (state.tokenRequired) {
      p.textContent = state.token ? 'Actions send the bearer token you entered (kept in this tab only).'
        : 'This node requires a bearer token for actions; you will be asked for it.';
    } else {
      p.textContent = state.token ? 'A bearer token is set for this tab.' : 'This node takes actions from this page without a token (it listens on loopback).';
    }
    $('#token-button').textContent = state.token ? 'Token ✓' : 'Token';
  }

  // ---- loading, coalesced --------------------------------------------------
  const loaders = {
    id: async () => { state.id = await api('GET', '/id'); renderHeader(); },
    status: async () => { state.status = await api('GET', '/upgrades/status'); renderHeader(); renderNode(); },
    proposals: async () => { state.proposals = (await api('GET', '/proposals')).proposals; noteVotes(); renderProposals(); renderLog(); },
    log: async () => { state.log = (await api('GET', '/execution-log')).entries; renderLog(); },
    validators: async () => { state.validators = await api('GET', '/validators'); renderValidators(); renderProposals(); },
    peers: async () => { state.peers = (await api('GET', '/peers')).peers; renderPeers(); },
    fetches: async () => { state.fetches = (await api('GET', '/fetches')).fetches; renderFetches(); },
  };
  const dirty = new Set();
  const running = new Set();
  let loadTimer = null;
  function want(...names) {
    for (const n of names) dirty.add(n);
    if (!loadTimer) loadTimer = setTimeout(runLoads, 50);
  }
  function runLoads() {
    loadTimer = null;
    for (const name of [...dirty]) {
      if (running.has(name)) continue; // re-run when the current load ends
      dirty.delete(name);
      running.add(name);
      loaders[name]().then(() => clearNotice(name), (err) => showNotice(name, err)).finally(() => {
        running.delete(name);
        if (dirty.has(name)) want();
      });
    }
  }
  const notices = new Map();
  function showNotice(name, err) {
    notices.set(name, 'Could not read ' + name + ': ' + err.message);
    renderNotice();
  }
  function clearNotice(name) {
    if (notices.delete(name)) renderNotice();
  }
  function renderNotice() {
    const n = $('#notice');
    n.textContent = [...notices.values()].join(' · ');
    n.hidden = notices.size === 0;
  }

  // ---- live updates ------------------------------------------------------
  const ALL = Object.keys(loaders);
  const affects = {
    proposal_changed: ['proposals'],
    entry_final: ['proposals', 'log', 'status'],
    report_added: ['log'],
    ratify_added: ['proposals', 'log'],
    attest_added: ['proposals'],
    executed: ['status', 'log', 'proposals'],
    executor: ['status', 'log', 'proposals'],
    validators: ['validators'],
    peers: ['peers', 'validators'],
    fetch: ['fetches'],
    resync: ALL,
  };
  let source = null, retryMs = 2000;
  function setLive(s, text) {
    const l = $('#live');
    l.dataset.state = s;
    l.textContent = text || s;
  }
  function connect() {
    source = new EventSource('/events');
    source.addEventListener('hello', () => {
      retryMs = 2000;
      setLive('live', 'live');
      want(...ALL); // whatever happened while disconnected
    });
    source.addEventListener('changes', (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      for (const e of msg.events || []) want(...(affects[e.kind] || ALL));
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. too many clients): the
        // browser does not retry that on its own.
        setLive('down', 'updates paused, retrying');
        source.close();
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 60000);
      } else {
        setLive('reconnecting', 'reconnecting');
      }
    });
  }

  // ---- proposals -----------------------------------------------------------
  function noteVotes() {
    for (const p of state.proposals) {
      let seen = state.voteSeen.get(p.proposal_id);
      if (!seen) { seen = new Map(); state.voteSeen.set(p.proposal_id, seen); }
      for (const v of p.votes) {
        const prev = seen.get(v.voter);
        if (!prev) { seen.set(v.voter, { current: v, superseded: [] }); continue; }
        if (prev.current.op_id !== v.op_id) {
          prev.superseded.unshift(prev.current);
          prev.superseded.length = Math.min(prev.superseded.length, 5);
          prev.current = v;
        }
      }
    }
  }
  const STEP_ORDER = ['voting', 'approved', 'ratified', 'executed'];
  function steps(p) {
    const s = p.status;
    const reached = {
      voting: true,
      approved: ['approved', 'ratified', 'executed', 'failed', 'rolled_back'].includes(s),
      ratified: ['ratified', 'executed', 'failed', 'rolled_back'].includes(s),
      executed: ['executed', 'rolled_back'].includes(s),
    };
    const items = STEP_ORDER.map((name) => {
      let cls = reached[name] ? 'done' : '';
      let label = name;
      if (name === 'approved' && s === 'rejected') { cls = 'failed'; label = 'rejected'; }
      if (name === 'executed' && s === 'failed') { cls = 'failed'; label = 'failed here'; }
      if (name === 'executed' && s === 'rolled_back') { label = 'executed, rolled back here'; }
      if (name === 'voting' && s === 'voting') cls = 'current';
      return h('li', { class: cls, 'data-step': name }, label);
    });
    return h('ol', { class: 'steps', 'aria-label': 'Progress: ' + s }, items);
  }
  function badgeClass(s) {
    if (['executed', 'approved', 'ratified'].includes(s)) return 'badge good';
    if (['failed', 'rejected'].includes(s)) return 'badge bad';
    if (s === 'rolled_back') return 'badge warn';
    return 'badge';
  }
  function tally(p) {
    const t = p.tally;
    const el = t.eligible > 0 ? t.eligible : 1;
    const a = Math.min(1, t.approval / el), r = Math.min(1 - a, t.rejection / el);
    const approve = h('span', { class: 'seg approve' });
    const reject = h('span', { class: 'seg reject' });
    approve.style.width = (a * 100) + '%';
    reject.style.width = (r * 100) + '%';
    const marks = [];
    const q = h('span', { class: 'mark quorum', title: 'quorum: ' + pct(t.quorum) + ' of the eligible weight must vote' });
    q.style.left = Math.min(100, t.quorum * 100) + '%';
    marks.push(q);
    if (t.early_approval) {
      const e = h('span', { class: 'mark early', title: 'early approval once approval exceeds half of the eligible weight' });
      e.style.left = '50%';
      marks.push(e);
    }
    const label = 'Approval ' + pct(a) + ' and rejection ' + pct(r) + ' of the eligible weight; quorum ' + pct(t.quorum) +
      (t.early_approval ? '; early approval above 50%' : '');
    return h('div', { class: 'tally' },
      h('div', { class: 'bar', role: 'img', 'aria-label': label }, approve, reject, marks),
      h('p', { class: 'legend' },
        h('span', { class: 'sw approve' }), 'approval ' + num(t.approval), ' · ',
        h('span', { class: 'sw reject' }), 'rejection ' + num(t.rejection), ' · ',
        'eligible ' + num(t.eligible), ' · turnout ' + pct(t.voted_share || 0) + ' (quorum ' + pct(t.quorum) + ', lower dashes)',
        t.early_approval ? ' · early approval above ' + num(t.eligible / 2) + ' (upper line)' : ''));
  }
  function timeLeft(p) {
    if (!p.voting_ends_at) return null;
    const end = Date.parse(p.voting_ends_at);
    return h('p', { class: 'time-left', 'data-ends': end, 'data-status': p.status, 'data-id': p.proposal_id });
  }
  // The end of a voting period changes a status without any event, so the
  // page re-reads the proposals then: at most 5 times per proposal, 5 s
  // apart (the node's clock may be a little behind this browser's).
  const expiryChecks = new Map();
  function updateTimes() {
    let expired = false;
    for (const e of document.querySelectorAll('.time-left')) {
      const left = Number(e.dataset.ends) - Date.now();
      const voting = e.dataset.status === 'voting';
      if (left > 0) {
        e.textContent = 'Voting period ends in ' + duration(left) + (voting ? '' : ' (decided early)');
        continue;
      }
      e.textContent = 'Voting period over';
      const c = expiryChecks.get(e.dataset.id) || { n: 0, next: 0 };
      if (voting && c.n < 5 && Date.now() >= c.next) {
        expiryChecks.set(e.dataset.id, { n: c.n + 1, next: Date.now() + 5000 });
        expired = true;
      }
    }
    if (expired) want('proposals');
  }
  function votesTable(p) {
    const seen = state.voteSeen.get(p.proposal_id) || new Map();
    const rows = [];
    for (const v of p.votes) {
      rows.push(h('tr', { 'data-voter': v.voter },
        h('td', {}, peerCode(v.voter)), h('td', {}, num(v.weight)),
        h('td', { class: 'choice-' + v.choice }, v.choice), h('td', { class: 'note' }, '')));
      const s = seen.get(v.voter);
      for (const old of (s ? s.superseded : [])) {
        rows.push(h('tr', { class: 'superseded', 'data-voter': v.voter },
          h('td', {}, peerCode(old.voter)), h('td', {}, num(old.weight)), h('td', {}, old.choice),
          h('td', { class: 'note' }, 'superseded')));
      }
    }
    for (const q of p.equivocators || []) {
      rows.push(h('tr', { class: 'equivocated', 'data-voter': q },
        h('td', {}, peerCode(q)), h('td', {}, '–'), h('td', {}, 'two votes'),
        h('td', { class: 'note' }, 'equivocated: counts as no vote')));
    }
    if (!rows.length) return h('p', { class: 'empty' }, 'No votes yet.');
    return h('div', { class: 'table-wrap' }, h('table', { class: 'votes' },
      h('caption', { class: 'hint' }, p.votes.length + ' effective vote' + (p.votes.length === 1 ? '' : 's')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Voter'), h('th', { scope: 'col' }, 'Weight'),
        h('th', { scope: 'col' }, 'Choice'), h('th', { scope: 'col' }, ''))),
      h('tbody', {}, rows)));
  }
  function ratification(p) {
    const r = p.ratification;
    if (!r) {
      if (['approved'].includes(p.status)) return h('p', { class: 'hint' }, 'Approved: waiting for the validators to order it.');
      return null;
    }
    const signed = new Set(r.signers || []);
    const attested = new Set(r.attesters || []);
    const vals = (state.validators && state.validators.validators) || [];
    const items = vals.map((v) => {
      const cls = signed.has(v.peer_id) ? 'signed' : attested.has(v.peer_id) ? 'attested' : '';
      const what = cls === 'signed' ? 'signed' : cls === 'attested' ? 'attested, not signed yet' : 'no signature yet';
      return h('li', { class: cls, title: v.peer_id + ': ' + what }, peerName(v.peer_id));
    });
    const stateText = r.final ? 'final' : 'collecting signatures';
    return h('div', { class: 'ratification', 'data-final': r.final },
      h('p', {}, 'Ratification (entry ', h('code', {}, '#' + r.seq), '): ',
        h('strong', { class: 'sig-count' }, r.signatures + ' / ' + r.required), ' signatures needed · ',
        h('span', { class: r.final ? 'ok' : 'warn' }, stateText)),
      items.length ? h('ul', { class: 'sigs', 'aria-label': 'validators' }, items) : null);
  }
  function actionButton(key, label, cls, fn) {
    return h('button', { type: 'button', class: cls, 'data-key': key, onclick: (ev) => runAction(key, ev.currentTarget, fn) }, label);
  }
  async function runAction(key, btn, fn) {
    btn.disabled = true;
    setResult(key, 'working…', '');
    try {
      const msg = await fn();
      setResult(key, msg, 'ok');
    } catch (err) {
      setResult(key, err.message, 'error');
    } finally {
      btn.disabled = false;
    }
  }
  function setResult(key, text, cls) {
    state.results.set(key, { text, cls });
    const out = document.querySelector('output[data-result="' + CSS.escape(key) + '"]');
    if (out) { out.textContent = text; out.className = 'result ' + cls; }
  }
  function resultFor(key) {
    const r = state.results.get(key) || { text: '', cls: '' };
    return h('output', { class: 'result ' + r.cls, 'data-result': key, 'aria-live': 'polite' }, r.text);
  }
  function proposalActions(p) {
    const id = p.proposal_id;
    const k = 'p:' + id;
    const vote = (choice) => async () => {
      const r = await api('POST', '/proposals/' + encodeURIComponent(id) + '/vote', { vote: choice });
      want('proposals');
      return 'Voted ' + r.vote + (r.changed ? ' (changed from the earlier vote)' : '') + '.';
    };
    const buttons = [];
    if (['voting', 'approved'].includes(p.status)) {
      buttons.push(actionButton(k, 'Vote approve', 'vote-approve', vote('approval')));
      buttons.push(actionButton(k, 'Vote reject', 'danger vote-reject', vote('rejection')));
    }
    buttons.push(actionButton(k, 'Dry run', 'secondary dry-run', async () => {
      const r = await api('POST', '/upgrades/' + encodeURIComponent(id) + '/test');
      return r.success
        ? 'Dry run succeeded: version ' + r.version + ', state ' + short(r.state_hash, 12) + ' (' + r.duration_ms + ' ms)' + (r.diff ? '\n' + r.diff : '')
        : 'Dry run failed: ' + r.error;
    }));
    if (['executed', 'failed'].includes(p.status)) {
      buttons.push(actionButton(k, 'Roll back here', 'danger rollback', async () => {
        if (!window.confirm('Restore the state from before ' + id + ' on this node and pause its executor?')) return 'Cancelled.';
        const r = await api('POST', '/upgrades/' + encodeURIComponent(id) + '/rollback');
        want('status', 'proposals', 'log');
        return r.message + ' (restored ' + r.restored_version + ')';
      }));
    }
    return h('div', { class: 'actions' }, buttons, resultFor(k));
  }
  function renderProposals() {
    const box = $('#proposals');
    const focusKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focus : null;
    const list = state.proposals;
    if (!list.length) {
      box.replaceChildren(h('p', { class: 'empty' }, 'No proposals yet. Propose one under Actions.'));
      return;
    }
    box.replaceChildren(...list.map((p) => h('article', {
      class: 'proposal', 'data-id': p.proposal_id, 'data-status': p.status, 'aria-labelledby': 'pt-' + p.proposal_id,
    },
    h('header', {},
      h('h3', { id: 'pt-' + p.proposal_id }, p.title),
      h('span', { class: badgeClass(p.status) + ' status' }, p.status.replace('_', ' '))),
    h('p', { class: 'meta' }, 'version ', h('strong', {}, p.version), ' · ', h('code', { title: p.proposal_id }, p.proposal_id),
      ' · by ', peerCode(p.proposer)),
    p.description ? h('p', {}, p.description) : null,
    h('dl', { class: 'kv' },
      h('dt', {}, 'package'), h('dd', {}, h('code', {}, p.package_url)),
      h('dt', {}, 'size'), h('dd', {}, bytes(p.package_size) + ' (' + p.package_size + ' bytes)'),
      h('dt', {}, 'sha-256'), h('dd', {}, h('code', { title: p.package_hash }, short(p.package_hash, 20)))),
    steps(p),
    tally(p),
    timeLeft(p),
    votesTable(p),
    ratification(p),
    proposalActions(p))));
    for (const b of box.querySelectorAll('button')) b.dataset.focus = b.dataset.key + ':' + b.textContent;
    if (focusKey) {
      const again = [...box.querySelectorAll('button')].find((b) => b.dataset.focus === focusKey);
      if (again) again.focus();
    }
    updateTimes();
  }

  // ---- execution log -------------------------------------------------------
  function ownResult(e) {
    if (e.stuck) return h('span', { class: 'warn' }, 'retrying (attempt ' + e.stuck.attempts + '): ' + e.stuck.last_error);
    if (!e.executed) return h('span', { class: 'muted' }, 'not executed yet');
    if (e.void) return h('span', { class: 'muted' }, 'skipped (void)');
    return h('span', {}, h('span', { class: e.success ? 'ok' : 'bad' }, e.success ? '✓ executed' : '✗ failed (state unchanged)'),
      e.post_state_sha256 ? [' → ', h('code', { title: e.post_state_sha256 }, short(e.post_state_sha256, 12))] : null);
  }
  function reports(e) {
    const groups = Object.entries(e.reports || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (!groups.length) return h('span', { class: 'muted' }, 'none yet');
    const top = groups[0][1];
    const own = e.post_state_sha256 || null;
    return h('ul', { class: 'reports', 'data-groups': groups.length },
      groups.map(([hash, count], i) => {
        const divergent = groups.length > 1 && (count < top || i > 0);
        const who = ((e.reporters || {})[hash] || []).map(peerName).join(', ');
        return h('li', { class: divergent ? 'divergent' : '', 'data-hash': hash, 'data-count': count },
          h('code', { title: hash || 'no state hash' }, hash ? short(hash, 12) : '(no state)'),
          ' × ' + count + (hash && hash === own ? ' · this node' : '') + (divergent ? ' · diverges' : ''),
          who ? h('span', { class: 'who' }, who) : null);
      }));
  }
  function titleOf(id) {
    const p = state.proposals.find((x) => x.proposal_id === id);
    return p ? p.title : h('code', { title: id }, short(id, 24));
  }
  function renderLog() {
    const box = $('#log');
    if (!state.log.length) {
      box.replaceChildren(h('p', { class: 'empty' }, 'No final entries yet.'));
      return;
    }
    const rows = state.log.map((e) => h('tr', {
      'data-seq': e.seq, 'data-final': e.final, 'data-void': !!e.void,
    },
    h('td', {}, '#' + e.seq),
    h('td', {}, e.void ? h('em', {}, 'void (skipped everywhere)') : [titleOf(e.proposal_id), h('br'),
      h('span', { class: 'muted' }, 'v' + e.version + ' · '), h('code', { title: e.proposal_id, class: 'muted' }, short(e.proposal_id.replace(/^upgrade_/, ''), 15))]),
    h('td', {}, h('span', { class: e.final ? 'badge good' : 'badge' }, e.final ? 'final' : 'pending'),
      h('br'), h('span', { class: 'muted', title: (e.signers || []).join('\n') }, (e.signers || []).length + ' / ' + (e.required || '?') + ' sig.')),
    h('td', {}, ownResult(e)),
    h('td', {}, reports(e))));
    box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'log' },
      h('thead', {}, h('tr', {}, ['Seq', 'Entry', 'Finality', 'This node', 'Reports by post-state hash'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))));
  }

  // ---- this node ------------------------------------------------------------
  function renderHeader() {
    const id = state.id ? state.id.id : '';
    const st = state.status;
    $('#node-line').replaceChildren(h('span', {},
      id ? h('code', { title: id }, peerShort(id)) : '', st ? ' · version ' + st.current_version : '',
      st ? [' · state ', h('code', { title: st.state_hash }, short(st.state_hash, 10))] : ''));
  }
  function renderNode() {
    const st = state.status;
    if (!st) return;
    let exec;
    if (st.halted) exec = h('span', { class: 'bad' }, 'HALTED: ' + (st.paused_reason || 'conflicting execution log'));
    else if (st.paused) exec = h('span', { class: 'warn' }, 'paused: ' + (st.paused_reason || ''));
    else if (st.stuck) exec = h('span', { class: 'warn' }, 'retrying entry #' + st.stuck.seq + ' (attempt ' + st.stuck.attempts + ', next ' + st.stuck.next_try + '): ' + st.stuck.last_error);
    else exec = h('span', { class: 'ok' }, 'running');
    $('#node').replaceChildren(h('dl', { class: 'kv', id: 'node-facts' },
      h('dt', {}, 'peer ID'), h('dd', {}, h('code', {}, state.id ? state.id.id : '')),
      h('dt', {}, 'version'), h('dd', { id: 'current-version' }, st.current_version),
      h('dt', {}, 'state hash'), h('dd', {}, h('code', { id: 'state-hash' }, st.state_hash)),
      h('dt', {}, 'executed / final'), h('dd', {}, '#' + st.last_executed_seq + ' / #' + st.final_seq),
      h('dt', {}, 'executor'), h('dd', { id: 'executor-state' }, exec),
      h('dt', {}, 'upgrades'), h('dd', {}, String(st.total_upgrades))));
  }
  function renderValidators() {
    const v = state.validators;
    if (!v) return;
    const rows = v.validators.map((x) => h('tr', { 'data-peer': x.peer_id },
      h('td', {}, peerCode(x.peer_id)),
      h('td', {}, x.leader ? h('span', { class: 'badge good' }, 'leader') : ''),
      h('td', {}, x.connected ? h('span', { class: 'ok' }, 'connected') : h('span', { class: 'bad' }, 'not connected')),
      h('td', {}, x.banned_until ? h('span', { class: 'bad' }, 'banned until ' + x.banned_until) : '')));
    const ev = (v.equivocations || []).map((q) => h('li', { class: 'bad' },
      'validator ', peerCode(q.validator), ' signed ' + q.entry_hashes.length + ' different entries at #' + q.seq + ' (counts for neither)'));
    $('#validators').replaceChildren(
      h('p', { class: 'hint' }, v.validators.length + ' validators; an entry is final with ' + v.finality_needed +
        ' signatures' + (v.leader ? '' : '; no raft leader known right now') + (v.self ? '; this node is one of them.' : '.')),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Validator', 'Raft', 'Link', 'Ban'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows))),
      ev.length ? h('ul', { class: 'equivocations' }, ev) : h('p', { class: 'hint' }, 'No equivocation evidence.'));
  }
  function renderPeers() {
    const ps = state.peers;
    if (!ps.length) { $('#peers').replaceChildren(h('p', { class: 'empty' }, 'No connected peers.')); return; }
    $('#peers').replaceChildren(h('p', { class: 'hint' }, ps.length + ' connected'),
      h('ul', { class: 'peer-list' }, ps.map((p) => h('li', {},
        peerCode(p.id), ' ', h('span', { class: p.relayed ? 'badge warn' : 'badge' }, p.relayed ? 'relayed' : 'direct'),
        ' ', h('code', { class: 'muted hide-narrow' }, (p.addrs || []).join(' '))))));
  }
  function renderFetches() {
    const fs = state.fetches;
    if (!fs.length) { $('#fetches').replaceChildren(h('p', { class: 'empty' }, 'No package downloads (bitswap) since the node started.')); return; }
    $('#fetches').replaceChildren(...fs.map((f) => {
      const label = f.complete ? 'complete' : f.error ? 'stopped: ' + f.error : f.finished_at ? 'ended' : 'downloading';
      const bar = h('progress', { max: f.total || 1, value: f.total ? f.done : 0, 'aria-label': 'download of ' + f.package });
      return h('div', { class: 'fetch' }, h('code', {}, short(f.package, 24)), ' ', h('span', { class: f.error ? 'bad' : f.complete ? 'ok' : 'warn' }, label),
        bar, h('span', { class: 'hint' }, bytes(f.done) + (f.total ? ' of ' + bytes(f.total) : '')));
    }));
  }

  // ---- actions ---------------------------------------------------------------
  async function propose(ev) {
    ev.preventDefault();
    const out = $('#propose-result');
    const btn = $('#p-submit');
    const val = (id) => $(id).value.trim();
    const req = { title: val('#p-title'), description: $('#p-description').value, version: val('#p-version') };
    const file = $('#p-file').files[0];
    const problems = [];
    if (!req.title) problems.push('a title');
    if (!/^\d+\.\d+\.\d+/.test(req.version)) problems.push('a version such as 1.2.0');
    if (!file && !(val('#p-url') && val('#p-hash') && Number(val('#p-size')) > 0)) problems.push('a package file, or URL, SHA-256 and size');
    if (problems.length) {
      out.className = 'result error';
      out.textContent = 'Needs ' + problems.join(', ') + '.';
      return;
    }
    btn.disabled = true;
    out.className = 'result';
    try {
      if (file) {
        out.textContent = 'Uploading ' + file.name + ' (' + bytes(file.size) + ')…';
        const info = await api('POST', '/packages', file);
        Object.assign(req, { package_url: info.url, package_hash: info.sha256, package_size: info.size });
      } else {
        Object.assign(req, { package_url: val('#p-url'), package_hash: val('#p-hash'), package_size: Number(val('#p-size')) });
      }
      out.textContent = 'Proposing…';
      const r = await api('POST', '/upgrades/propose', req);
      out.className = 'result ok';
      out.textContent = 'Proposed ' + r.proposal_id + ' (' + r.status + '). Every member can vote on it now.';
      out.dataset.proposal = r.proposal_id;
      $('#propose-form').reset();
      want('proposals');
    } catch (err) {
      out.className = 'result error';
      out.textContent = err.message;
    } finally {
      btn.disabled = false;
    }
  }
  async function resume() {
    const out = $('#resume-result');
    const btn = $('#resume-button');
    btn.disabled = true;
    try {
      const st = await api('POST', '/upgrades/resume');
      out.className = 'result ok';
      out.textContent = 'Resumed; version ' + st.current_version + '.';
      want('status', 'log', 'proposals');
    } catch (err) {
      out.className = 'result error';
      out.textContent = err.message;
    } finally {
      btn.disabled = false;
    }
  }

  // ---- start -----------------------------------------------------------------
  function start() {
    $('#propose-form').addEventListener('submit', propose);
    $('#resume-button').addEventListener('click', resume);
    $('#token-button').addEventListener('click', () => askToken(''));
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.token = $('#token-input').value.trim();
      if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token); else sessionStorage.removeItem(TOKEN_KEY);
      closeToken(!!state.token);
    });
    $('#token-forget').addEventListener('click', () => {
      state.token = '';
      sessionStorage.removeItem(TOKEN_KEY);
      closeToken(false);
    });
    $('#token-cancel').addEventListener('click', () => closeToken(false));
    $('#token-dialog').addEventListener('cancel', () => closeToken(false));
    renderTokenState();
    want(...ALL);
    connect();
    setInterval(updateTimes, 1000); // redraws the countdowns only; no requests
  }
  start();
})();
