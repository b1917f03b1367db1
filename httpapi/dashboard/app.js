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
    // statusAt is when this page read the status (its clock): the
    // scheduled countdown runs from the node's seconds_left, so a browser
    // whose clock differs from the node's still counts down correctly.
    statusAt: 0,
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
    for (const c of children.flat(Infinity)) {
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
    if (m >= 48 * 60) return Math.floor(m / 1440) + 'd ' + Math.floor((m % 1440) / 60) + 'h';
    if (m >= 60) return Math.floor(m / 60) + 'h ' + (m % 60) + 'm';
    return m + ':' + String(r).padStart(2, '0');
  }
  // seconds as the operator wrote them: 90 -> "1 min 30 s".
  function seconds(n) {
    const parts = [];
    for (const [u, name] of [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']]) {
      if (n >= u) { parts.push(Math.floor(n / u) + ' ' + name); n %= u; }
    }
    return parts.join(' ') || '0 s';
  }
  // localTime shows a time in the browser's time zone; the title of the
  // element carries the UTC time the node works with.
  function localTime(d) {
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  }
  // rfc3339 is the UTC form the API takes (no fractional seconds).
  const rfc3339 = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  function timeEl(d) { return h('time', { datetime: rfc3339(d), title: rfc3339(d) + ' (UTC)' }, localTime(d)); }
  function nextMinor(v) {
    const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v || '');
    return m ? m[1] + '.' + (Number(m[2]) + 1) + '.0' : '';
  }
  function peerName(id) {
    if (!id) return '';
    return id === (state.id && state.id.id) ? peerShort(id) + ' (this node)' : peerShort(id);
  }
  function peerCode(id) { return h('code', { title: id }, peerName(id)); }

  // ---- the life of an upgrade, as the final log tells it -------------------
  const kindOf = (p) => p.type || 'code_upgrade';
  // A scheduled code upgrade's entry: no action, a schedule. It only
  // prepares the upgrade; an activate entry runs it.
  const isSchedule = (e) => !e.void && !e.action && !!(e.activate_at || e.activate_after_seconds);
  function proposalOf(id) { return state.proposals.find((x) => x.proposal_id === id) || null; }
  // lifeFacts reads the final log once per (log, proposals) pair: where each
  // code upgrade ran, which schedule an entry activated or cancelled, what
  // a rollback undid, and the latest entry that ran (the only one a
  // rollback may target).
  let factsMemo = { log: null, proposals: null, f: null };
  function lifeFacts() {
    if (factsMemo.log === state.log && factsMemo.proposals === state.proposals) return factsMemo.f;
    const f = {
      bySeq: new Map(), runSeq: new Map(), schedSeq: new Map(), activatedBy: new Map(),
      cancelOfSeq: new Map(), cancelOfProposal: new Map(), rolledBackBy: new Map(), lastRun: 0,
    };
    for (const e of state.log) {
      f.bySeq.set(e.seq, e);
      if (e.void) continue;
      if (isSchedule(e)) { f.schedSeq.set(e.proposal_id, e.seq); continue; }
      switch (e.action || '') {
        case 'activate':
          f.activatedBy.set(e.target, e.seq);
          // falls through: an activation runs the package
        case '':
          f.runSeq.set(e.proposal_id, e.seq);
          f.lastRun = e.seq;
          break;
        case 'rollback':
          f.lastRun = e.seq;
          f.rolledBackBy.set(e.target, e);
          break;
        case 'cancel': {
          if (e.target) f.cancelOfSeq.set(e.target, e);
          const cp = proposalOf(e.proposal_id);
          const target = cp ? cp.target : (f.bySeq.get(e.target) || {}).proposal_id;
          if (target) f.cancelOfProposal.set(target, e);
          break;
        }
      }
    }
    factsMemo = { log: state.log, proposals: state.proposals, f };
    return f;
  }
  // The scheduled upgrade waiting on this node, with its deadline on this
  // page's clock.
  function waiting() {
    const sc = state.status && state.status.scheduled;
    if (!sc) return null;
    return Object.assign({ deadline: state.statusAt + sc.seconds_left * 1000 }, sc);
  }
  // countdown is filled in by updateTimes every second.
  function countdown(deadline, attrs) {
    return h('span', Object.assign({ class: 'countdown', 'data-deadline': deadline }, attrs || {}), 'in ' + duration(deadline - Date.now()));
  }
  // jump links to a proposal card or a log row and moves focus there.
  function jump(href, label, title) {
    return h('a', {
      href, title: title || null, class: 'jump',
      onclick: (ev) => {
        const el = document.getElementById(href.slice(1));
        if (!el) return;
        ev.preventDefault();
        el.scrollIntoView({ block: 'start' });
        el.focus({ preventScroll: true });
      },
    }, label);
  }
  function proposalLink(id) {
    const p = proposalOf(id);
    return jump('#prop-' + id, p ? p.title : short(id, 24), id);
  }
  const entryLink = (seq) => jump('#entry-' + seq, '#' + seq, 'execution-log entry ' + seq);

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
    status: async () => {
      state.status = await api('GET', '/upgrades/status');
      state.statusAt = Date.now();
      renderHeader(); renderNode(); renderProposals(); renderLog();
    },
    proposals: async () => { state.proposals = (await api('GET', '/proposals')).proposals; noteVotes(); renderProposals(); renderLog(); renderNode(); },
    log: async () => { state.log = (await api('GET', '/execution-log')).entries || []; renderLog(); renderProposals(); },
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
  // steps shows where a proposal stands: voting, approved, its entry
  // (ratified, or for a scheduled upgrade: scheduled, with the countdown),
  // and the outcome on this node. Cancels and rollbacks end in what they
  // did; a cancelled upgrade and a cancel that came too late end stopped.
  function steps(p) {
    const s = p.status, kind = kindOf(p), f = lifeFacts();
    const hadEntry = !!(p.ratification && p.ratification.final);
    const decided = ['approved', 'ratified', 'scheduled', 'executed', 'failed', 'rolled_back'].includes(s) || hadEntry;
    const items = [];
    const step = (name, label, cls) => items.push(h('li', { class: cls || '', 'data-step': name }, label));
    step('voting', 'voting', s === 'voting' ? 'current' : 'done');
    if (s === 'rejected') step('approved', 'rejected', 'failed');
    else step('approved', 'approved', decided ? 'done' : '');
    const scheduled = kind === 'code_upgrade' && !!(p.activate_at || p.activate_after_seconds);
    if (scheduled) {
      const w = waiting();
      if (s === 'scheduled') {
        const mine = w && w.proposal_id === p.proposal_id;
        const at = mine ? new Date(w.activates_at) : p.activate_at ? new Date(p.activate_at) : null;
        step('scheduled', ['scheduled · activates ', at ? ['at ', timeEl(at), ' · '] : null,
          mine || p.activate_at ? countdown(mine ? w.deadline : at.getTime(), { 'data-id': p.proposal_id }) : 'after ' + seconds(p.activate_after_seconds)], 'waiting');
      } else {
        step('scheduled', 'scheduled', hadEntry || ['executed', 'failed', 'rolled_back'].includes(s) ? 'done' : '');
      }
    } else {
      step('ratified', 'ratified', hadEntry || ['ratified', 'executed', 'failed', 'rolled_back'].includes(s) ? 'done' : '');
    }
    if (kind === 'cancel') {
      if (s === 'too_late') step('outcome', 'too late: cancels nothing', 'failed');
      else if (s === 'failed') step('outcome', 'failed here', 'failed');
      else step('outcome', 'upgrade cancelled', s === 'executed' ? 'done' : '');
    } else if (kind === 'rollback') {
      if (s === 'failed') step('outcome', 'failed here', 'failed');
      else step('outcome', 'network rolled back', s === 'executed' ? 'done' : '');
    } else if (s === 'cancelled') {
      step('executed', 'cancelled: never runs', 'stopped');
    } else if (s === 'failed') {
      step('executed', 'failed here', 'failed');
    } else if (s === 'rolled_back') {
      step('executed', 'executed, rolled back here', 'done');
    } else if (s === 'executed' && f.rolledBackBy.has(f.runSeq.get(p.proposal_id))) {
      step('executed', 'executed, rolled back by the network', 'done');
    } else {
      step('executed', 'executed', s === 'executed' ? 'done' : '');
    }
    return h('ol', { class: 'steps', 'aria-label': 'Progress: ' + s.replace('_', ' ') }, items);
  }
  function badgeClass(s) {
    if (['executed', 'approved', 'ratified'].includes(s)) return 'badge good';
    if (['failed', 'rejected', 'too_late'].includes(s)) return 'badge bad';
    if (['rolled_back', 'cancelled'].includes(s)) return 'badge warn';
    if (s === 'scheduled') return 'badge info';
    return 'badge';
  }
  // lifeNote explains a status of the life cycle in words, with links to
  // the proposals and entries involved.
  function lifeNote(p) {
    const s = p.status, kind = kindOf(p), f = lifeFacts();
    const note = (cls, ...children) => h('p', { class: 'life-note ' + cls, 'data-note': s }, children);
    if (kind === 'code_upgrade') {
      if (s === 'scheduled') {
        const w = waiting();
        const seq = f.schedSeq.get(p.proposal_id) || (p.ratification && p.ratification.seq);
        if (w && w.proposal_id === p.proposal_id) {
          return note('info', 'Scheduled in entry ', entryLink(w.seq), ': every node has prepared it (fetch, verify, dry run); it runs at ',
            timeEl(new Date(w.activates_at)), ' on this node\'s clock, ', countdown(w.deadline, { 'data-id': p.proposal_id }),
            '. Until then the log waits for its activation or its cancellation.');
        }
        return note('info', 'Scheduled', seq ? [' in entry ', entryLink(seq)] : '', ': it runs ',
          p.activate_at ? ['at ', timeEl(new Date(p.activate_at))] : seconds(p.activate_after_seconds) + ' after its entry became final', '.');
      }
      if (s === 'cancelled') {
        const c = f.cancelOfProposal.get(p.proposal_id);
        return note('warn', 'Cancelled', c ? [' by ', proposalLink(c.proposal_id), ' (entry ', entryLink(c.seq), ')'] : '',
          ': it never runs on any node.');
      }
      const rb = f.rolledBackBy.get(f.runSeq.get(p.proposal_id));
      if (rb) {
        return note('warn', 'Rolled back by the network: ', proposalLink(rb.proposal_id), ' (entry ', entryLink(rb.seq),
          ') restored the state from before it, as version ' + rb.version + '.');
      }
      if (s === 'approved' && !p.ratification) {
        const w = waiting();
        if (w) return note('info', 'Approved; it waits behind the scheduled upgrade in entry ', entryLink(w.seq), ' (the log runs in order).');
      }
      return null;
    }
    const target = proposalOf(p.target);
    if (kind === 'cancel' && s === 'too_late') {
      const ran = f.runSeq.get(p.target), other = f.cancelOfProposal.get(p.target);
      const why = ran ? ['already ran in entry ', entryLink(ran)]
        : other ? ['was already cancelled by entry ', entryLink(other.seq)]
          : ['ran or was cancelled before this cancel could be ordered'];
      return note('bad', 'Too late: ', proposalLink(p.target), ' ', why,
        ', so this cancel was never ordered and changes nothing. A cancel never undoes an upgrade that ran: ',
        ran ? 'propose a network rollback of it instead.' : 'nothing is left to cancel.');
    }
    if (kind === 'cancel' && s === 'executed') {
      const c = f.cancelOfProposal.get(p.target);
      return note('warn', 'Cancelled ', proposalLink(p.target), c ? [' in entry ', entryLink(c.seq)] : '', ': it never runs on any node.');
    }
    if (kind === 'rollback' && s === 'executed') {
      const e = [...f.rolledBackBy.values()].find((x) => x.proposal_id === p.proposal_id);
      return note('warn', 'Every node restores the state from before ', e ? ['entry ', entryLink(e.target), ' ('] : '',
        proposalLink(p.target), e ? ')' : '', ' as version ' + p.version + '.');
    }
    if (!target && p.target) return note('info', 'Acts on ', h('code', { title: p.target }, short(p.target, 24)), ' (not known to this node).');
    return null;
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
    // Scheduled upgrades: the activation itself arrives as an event (its
    // entry becomes final), so nothing is re-read when a countdown ends.
    for (const e of document.querySelectorAll('.countdown')) {
      const left = Number(e.dataset.deadline) - Date.now();
      e.textContent = left > 0 ? 'in ' + duration(left) : 'due now: waiting for the validators to sign its activation';
    }
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
      if (['approved'].includes(p.status) && !waiting()) return h('p', { class: 'hint' }, 'Approved: waiting for the validators to order it.');
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
    const upgrade = kindOf(p) === 'code_upgrade';
    if (upgrade) {
      buttons.push(actionButton(k, 'Dry run', 'secondary dry-run', async () => {
        const r = await api('POST', '/upgrades/' + encodeURIComponent(id) + '/test');
        return r.success
          ? 'Dry run succeeded: version ' + r.version + ', state ' + short(r.state_hash, 12) + ' (' + r.duration_ms + ' ms)' + (r.diff ? '\n' + r.diff : '')
          : 'Dry run failed: ' + r.error;
      }));
    }
    // The life-cycle actions fill in the propose form; the operator reviews
    // it and proposes (the network then votes, as on any proposal).
    if (upgrade && ['approved', 'scheduled'].includes(p.status)) {
      buttons.push(h('button', { type: 'button', class: 'secondary cancel-upgrade', 'data-key': k, onclick: () => prefill('cancel', p) }, 'Cancel…'));
    }
    const f = lifeFacts();
    if (upgrade && f.lastRun && f.runSeq.get(id) === f.lastRun) {
      buttons.push(h('button', { type: 'button', class: 'danger rollback-network', 'data-key': k, onclick: () => prefill('rollback', p) }, 'Roll back network…'));
    }
    if (upgrade && ['executed', 'failed'].includes(p.status)) {
      buttons.push(actionButton(k, 'Roll back here', 'danger rollback', async () => {
        if (!window.confirm('Restore the state from before ' + id + ' on this node and pause its executor?')) return 'Cancelled.';
        const r = await api('POST', '/upgrades/' + encodeURIComponent(id) + '/rollback');
        want('status', 'proposals', 'log');
        return r.message + ' (restored ' + r.restored_version + ')';
      }));
    }
    return h('div', { class: 'actions' }, buttons, resultFor(k));
  }
  function meta(p) {
    const id = [h('code', { title: p.proposal_id }, p.proposal_id), ' · by ', peerCode(p.proposer)];
    switch (kindOf(p)) {
      case 'cancel':
        return h('p', { class: 'meta' }, 'cancels ', h('span', { class: 'target' }, proposalLink(p.target)), ' · ', id);
      case 'rollback':
        return h('p', { class: 'meta' }, 'rolls back ', h('span', { class: 'target' }, proposalLink(p.target)),
          ' → version ', h('strong', {}, p.version), ' · ', id);
      default:
        return h('p', { class: 'meta' }, 'version ', h('strong', {}, p.version), ' · ', id);
    }
  }
  // schedule is the dl row of a scheduled code upgrade.
  function schedule(p) {
    if (p.activate_at) return [h('dt', {}, 'schedule'), h('dd', { class: 'schedule' }, 'runs at ', timeEl(new Date(p.activate_at)))];
    if (p.activate_after_seconds) {
      return [h('dt', {}, 'schedule'), h('dd', { class: 'schedule' }, 'runs ' + seconds(p.activate_after_seconds) + ' after its entry is final')];
    }
    return [h('dt', {}, 'schedule'), h('dd', { class: 'schedule' }, 'runs as soon as its entry is final')];
  }
  function renderProposals() {
    const box = $('#proposals');
    const focusKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focus : null;
    const focusCard = document.activeElement && document.activeElement.matches && document.activeElement.matches('article.proposal') ? document.activeElement.id : null;
    const list = state.proposals;
    if (!list.length) {
      box.replaceChildren(h('p', { class: 'empty' }, 'No proposals yet. Propose one under Actions.'));
      return;
    }
    box.replaceChildren(...list.map((p) => h('article', {
      class: 'proposal', id: 'prop-' + p.proposal_id, tabindex: '-1',
      'data-id': p.proposal_id, 'data-status': p.status, 'data-kind': kindOf(p), 'aria-labelledby': 'pt-' + p.proposal_id,
    },
    h('header', {},
      h('h3', { id: 'pt-' + p.proposal_id }, p.title),
      kindOf(p) !== 'code_upgrade' ? h('span', { class: 'badge kind ' + kindOf(p) }, kindOf(p)) : null,
      h('span', { class: badgeClass(p.status) + ' status' }, p.status.replace('_', ' '))),
    meta(p),
    p.description ? h('p', {}, p.description) : null,
    p.package_url ? h('dl', { class: 'kv' },
      h('dt', {}, 'package'), h('dd', {}, h('code', {}, p.package_url)),
      h('dt', {}, 'size'), h('dd', {}, bytes(p.package_size) + ' (' + p.package_size + ' bytes)'),
      h('dt', {}, 'sha-256'), h('dd', {}, h('code', { title: p.package_hash }, short(p.package_hash, 20))),
      schedule(p)) : null,
    steps(p),
    lifeNote(p),
    tally(p),
    timeLeft(p),
    votesTable(p),
    ratification(p),
    proposalActions(p))));
    for (const b of box.querySelectorAll('button')) b.dataset.focus = b.dataset.key + ':' + b.textContent;
    if (focusKey) {
      const again = [...box.querySelectorAll('button')].find((b) => b.dataset.focus === focusKey);
      if (again) again.focus();
    } else if (focusCard) {
      const again = document.getElementById(focusCard);
      if (again) again.focus({ preventScroll: true });
    }
    updateTimes();
    renderTargets();
  }

  // ---- execution log -------------------------------------------------------
  const ownId = () => (state.id && state.id.id) || '';
  // ownReport is the post-state hash this node reported for e (undefined
  // when it has not reported).
  function ownReport(e) {
    for (const [hash, who] of Object.entries(e.reporters || {})) if (who.includes(ownId())) return hash;
    return undefined;
  }
  function ownResult(e) {
    if (e.stuck) return h('span', { class: 'warn' }, 'retrying (attempt ' + e.stuck.attempts + '): ' + e.stuck.last_error);
    if (isSchedule(e)) {
      if (!e.executed) return h('span', { class: 'muted' }, 'not prepared yet');
      const would = ownReport(e);
      return e.success
        ? h('span', {}, h('span', { class: 'ok' }, '✓ ready (dry run succeeded)'),
          would ? [' → would give ', h('code', { title: would }, short(would, 12))] : null)
        : h('span', { class: 'bad' }, '✗ the dry run fails here: this node would fail the upgrade');
    }
    if (!e.executed) return h('span', { class: 'muted' }, 'not executed yet');
    if (e.void) return h('span', { class: 'muted' }, 'skipped (void)');
    const hash = e.post_state_sha256 ? [' → ', h('code', { title: e.post_state_sha256 }, short(e.post_state_sha256, 12))] : null;
    if (e.action === 'cancel') return h('span', {}, h('span', { class: 'ok' }, '✓ recorded; nothing ran'), hash);
    if (e.action === 'rollback') {
      return h('span', {}, h('span', { class: e.success ? 'ok' : 'bad' }, e.success ? '✓ state restored' : '✗ failed (state unchanged)'), hash);
    }
    return h('span', {}, h('span', { class: e.success ? 'ok' : 'bad' }, e.success ? '✓ executed' : '✗ failed (state unchanged)'), hash);
  }
  const names = (hashes, e) => hashes.flatMap((hash) => (e.reporters || {})[hash] || []).map(peerName).join(', ');
  function reports(e) {
    const groups = Object.entries(e.reports || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (!groups.length) return h('span', { class: 'muted' }, 'none yet');
    if (isSchedule(e)) return readiness(e, groups);
    const top = groups[0][1];
    const own = ownReport(e);
    return h('ul', { class: 'reports', 'data-groups': groups.length },
      groups.map(([hash, count], i) => {
        const divergent = groups.length > 1 && (count < top || i > 0);
        const who = ((e.reporters || {})[hash] || []).map(peerName).join(', ');
        return h('li', { class: divergent ? 'divergent' : '', 'data-hash': hash, 'data-count': count },
          h('code', { title: hash || 'no state hash' }, hash ? short(hash, 12) : '(no state)'),
          ' × ' + count + (own !== undefined && hash === own ? ' · this node' : '') + (divergent ? ' · diverges' : ''),
          who ? h('span', { class: 'who' }, who) : null);
      }));
  }
  // readiness shows the reports of a scheduled entry for what they are:
  // each node's dry run of the upgrade and the state it would give, not an
  // execution. A node whose dry run fails reports no hash.
  function readiness(e, groups) {
    const ready = groups.filter(([hash]) => hash);
    const failing = groups.filter(([hash]) => !hash);
    const total = groups.reduce((n, g) => n + g[1], 0);
    const main = ready.length ? ready[0][1] : 0;
    const divergent = ready.slice(1);
    const parts = [main + ' of ' + total + ' reporting node' + (total === 1 ? '' : 's') + ' ready'];
    if (failing.length) parts.push(names(failing.map((g) => g[0]), e) + ' would fail');
    if (divergent.length) parts.push(names(divergent.map((g) => g[0]), e) + ' would reach a different state');
    const own = ownReport(e);
    return h('div', { class: 'readiness', 'data-ready': main, 'data-total': total },
      h('p', { class: 'readiness-summary' + (failing.length || divergent.length ? ' failing' : '') }, parts.join('; '),
        h('span', { class: 'visually-hidden' }, ' (readiness: dry runs, not executions)')),
      h('ul', { class: 'reports readiness', 'data-groups': groups.length, title: 'readiness reports: each node dry-ran the scheduled upgrade' },
        groups.map(([hash, count], i) => {
          const cls = !hash ? 'failing' : i > 0 && ready.length > 1 ? 'divergent' : '';
          const who = ((e.reporters || {})[hash] || []).map(peerName).join(', ');
          return h('li', { class: cls, 'data-hash': hash, 'data-count': count },
            hash ? ['would give ', h('code', { title: hash }, short(hash, 12))] : 'dry run fails',
            ' × ' + count + (own !== undefined && hash === own ? ' · this node' : ''),
            who ? h('span', { class: 'who' }, who) : null);
        })));
  }
  function titleOf(id) {
    const p = proposalOf(id);
    return h('span', { class: 'entry-title' }, p ? p.title : h('code', { title: id }, short(id, 24)));
  }
  // entryKind names what an entry does: run, schedule, activate, cancel,
  // rollback or void.
  function entryKind(e) {
    if (e.void) return 'void';
    if (isSchedule(e)) return 'schedule';
    return e.action || 'run';
  }
  function entryCell(e) {
    const f = lifeFacts();
    const idCode = h('code', { title: e.proposal_id, class: 'muted' }, short((e.proposal_id || '').replace(/^upgrade_/, ''), 15));
    switch (entryKind(e)) {
      case 'void':
        return h('em', {}, 'void (skipped everywhere)');
      case 'schedule': {
        const when = e.activate_at ? ['scheduled for ', timeEl(new Date(e.activate_at * 1000))]
          : ['scheduled for ' + seconds(e.activate_after_seconds) + ' after final'];
        const c = f.cancelOfSeq.get(e.seq), a = f.activatedBy.get(e.seq), w = waiting();
        let fate = null;
        if (c) fate = h('span', { class: 'badge warn' }, 'cancelled by ', entryLink(c.seq), ': never runs');
        else if (a) fate = h('span', { class: 'badge good' }, 'activated by ', entryLink(a));
        else if (w && w.seq === e.seq) fate = h('span', { class: 'badge info' }, 'activates ', countdown(w.deadline, { 'data-seq': e.seq }));
        return [h('span', { class: 'act' }, when), h('br'), titleOf(e.proposal_id), h('br'),
          h('span', { class: 'muted' }, 'v' + e.version + ' · '), idCode, fate ? [h('br'), fate] : null];
      }
      case 'activate':
        return [h('span', { class: 'act' }, 'activation of ', entryLink(e.target)), h('br'), titleOf(e.proposal_id), h('br'),
          h('span', { class: 'muted' }, 'v' + e.version + ' · '), idCode];
      case 'cancel': {
        const cp = proposalOf(e.proposal_id);
        const what = e.target ? ['cancel of ', entryLink(e.target)]
          : ['cancel before ordering', cp && cp.target ? [': ', proposalLink(cp.target)] : null];
        return [h('span', { class: 'act' }, what), h('br'), titleOf(e.proposal_id), h('br'), idCode];
      }
      case 'rollback':
        return [h('span', { class: 'act rollback' }, 'rollback of ', entryLink(e.target), ' → v' + e.version), h('br'),
          titleOf(e.proposal_id), h('br'), idCode];
      default:
        return [titleOf(e.proposal_id), h('br'), h('span', { class: 'muted' }, 'v' + e.version + ' · '), idCode];
    }
  }
  function renderLog() {
    const box = $('#log');
    if (!state.log.length) {
      box.replaceChildren(h('p', { class: 'empty' }, 'No final entries yet.'));
      return;
    }
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('#log tr[id]');
    const f = lifeFacts();
    const rows = state.log.map((e) => {
      const kind = entryKind(e);
      const cancelled = kind === 'schedule' && f.cancelOfSeq.has(e.seq);
      return h('tr', {
        id: 'entry-' + e.seq, tabindex: '-1', class: kind === 'void' || cancelled ? 'voided' : '',
        'data-seq': e.seq, 'data-final': e.final, 'data-void': !!e.void, 'data-action': kind, 'data-cancelled': cancelled,
      },
      h('td', {}, '#' + e.seq),
      h('td', {}, entryCell(e)),
      h('td', {}, h('span', { class: e.final ? 'badge good' : 'badge' }, e.final ? 'final' : 'pending'),
        h('br'), h('span', { class: 'muted', title: (e.signers || []).join('\n') }, (e.signers || []).length + ' / ' + (e.required || '?') + ' sig.')),
      h('td', {}, ownResult(e)),
      h('td', {}, reports(e)));
    });
    box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'log' },
      h('thead', {}, h('tr', {}, ['Seq', 'Entry', 'Finality', 'This node', 'Reports by post-state hash'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))));
    if (focused) {
      const again = document.getElementById(focused.id);
      if (again) again.focus({ preventScroll: true });
    }
    updateTimes();
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
      h('dt', {}, 'upgrades'), h('dd', {}, String(st.total_upgrades)),
      h('dt', {}, 'scheduled'), h('dd', { id: 'scheduled-upgrade' }, scheduledFact()),
      h('dt', {}, 'never run'), h('dd', { id: 'voided' }, voidedFact(st.voided || []))));
    updateTimes();
  }
  // scheduledFact: the upgrade waiting for its time on this node.
  function scheduledFact() {
    const w = waiting();
    if (!w) return h('span', { class: 'muted' }, 'none');
    return [entryLink(w.seq), ' ', proposalLink(w.proposal_id), ' → v' + w.version, h('br'),
      'activates at ', timeEl(new Date(w.activates_at)), ' · ', countdown(w.deadline, { id: 'scheduled-countdown' })];
  }
  // voidedFact: the latest entries that never run, newest first.
  function voidedFact(list) {
    if (!list.length) return h('span', { class: 'muted' }, 'none');
    return h('ul', { class: 'voided-list' }, list.map((v) => h('li', { 'data-seq': v.seq },
      entryLink(v.seq), ' ', v.cancelled_by
        ? [v.proposal_id ? proposalLink(v.proposal_id) : '', ' cancelled by ', entryLink(v.cancelled_by)]
        : h('span', { class: 'muted' }, 'void: the validators voided this seq'))));
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
  // The propose form makes a code upgrade (now, at a time, or after a
  // delay), a cancel or a rollback; syncForm shows the fields the kind
  // needs (hidden fields are out of the tab order).
  function syncForm() {
    const kind = $('#p-type').value;
    $('#p-target-group').hidden = kind === 'code_upgrade';
    $('#p-version-group').hidden = kind === 'cancel';
    $('#p-package-group').hidden = kind !== 'code_upgrade';
    $('#p-version-label').textContent = kind === 'rollback'
      ? 'Version the restored state gets (above the current one: versions never go down)'
      : 'Version (above the current one)';
    $('#p-target').placeholder = kind === 'cancel' ? 'an approved or scheduled upgrade' : kind === 'rollback' ? 'the latest upgrade that ran' : '';
    const when = $('#p-when').value;
    $('#p-at-group').hidden = when !== 'at';
    $('#p-after-group').hidden = when !== 'after';
    renderTargets();
    showUTC();
  }
  // targetCandidates: the proposals the chosen kind can act on.
  function targetCandidates(kind) {
    const f = lifeFacts();
    return state.proposals.filter((p) => kindOf(p) === 'code_upgrade' && (kind === 'cancel'
      ? ['voting', 'approved', 'scheduled'].includes(p.status)
      : f.lastRun > 0 && f.runSeq.get(p.proposal_id) === f.lastRun));
  }
  function renderTargets() {
    const kind = $('#p-type').value;
    const list = kind === 'code_upgrade' ? [] : targetCandidates(kind);
    $('#p-target-list').replaceChildren(...list.map((p) => h('option', { value: p.proposal_id, label: p.title + ' (' + p.status.replace('_', ' ') + ')' })));
    const v = $('#p-target').value.trim();
    const hint = $('#p-target-hint');
    if (kind === 'code_upgrade') { hint.textContent = ''; return; }
    if (!v) {
      hint.textContent = list.length ? list.length + ' candidate' + (list.length === 1 ? '' : 's') + ' in the list'
        : kind === 'cancel' ? 'No upgrade waiting that could be cancelled.' : 'No upgrade has run that could be rolled back.';
      return;
    }
    const p = state.proposals.find((x) => x.proposal_id === v);
    hint.textContent = p ? '→ ' + p.title + ' (' + kindOf(p).replace('_', ' ') + ', ' + p.status.replace('_', ' ') + ')'
      : 'Not a proposal ID this page knows; the node also accepts a unique prefix.';
  }
  // showUTC shows what a local date-time is sent as.
  function showUTC() {
    const v = $('#p-activate-at').value;
    const d = v ? new Date(v) : null;
    $('#p-at-utc').textContent = d && !isNaN(d) ? 'Sent as activate_at ' + rfc3339(d) + ' (UTC).' : 'Pick a date and time in your time zone.';
  }
  // prefill fills the form for a cancel or a network rollback of p and
  // moves the focus there: the operator reviews and proposes.
  function prefill(kind, p) {
    $('#p-type').value = kind;
    $('#p-target').value = p.proposal_id;
    const title = (kind === 'cancel' ? 'Cancel: ' : 'Roll back: ') + p.title;
    $('#p-title').value = title.slice(0, 200);
    if (kind === 'rollback') $('#p-version').value = nextMinor(state.status && state.status.current_version);
    syncForm();
    const out = $('#propose-result');
    out.className = 'result';
    out.textContent = kind === 'cancel'
      ? 'Filled in: a cancel of ' + p.title + '. Review and press Propose; the network votes on it.'
      : 'Filled in: a network rollback of ' + p.title + ' to the state from before it, as a new version. Review and press Propose; the network votes on it.';
    delete out.dataset.proposal;
    $('#actions-section').scrollIntoView({ block: 'start' });
    $('#p-title').focus({ preventScroll: true });
  }
  async function propose(ev) {
    ev.preventDefault();
    const out = $('#propose-result');
    const btn = $('#p-submit');
    const val = (id) => $(id).value.trim();
    delete out.dataset.proposal; // names the proposal this submit made, once it did
    const kind = $('#p-type').value;
    const req = { type: kind, title: val('#p-title'), description: $('#p-description').value };
    const file = kind === 'code_upgrade' ? $('#p-file').files[0] : null;
    const problems = [];
    if (!req.title) problems.push('a title');
    if (kind !== 'cancel') {
      req.version = val('#p-version');
      if (!/^\d+\.\d+\.\d+/.test(req.version)) problems.push('a version such as 1.2.0');
    }
    if (kind !== 'code_upgrade') {
      req.target = val('#p-target');
      if (!req.target) problems.push('the target proposal');
    } else {
      if (!file && !(val('#p-url') && val('#p-hash') && Number(val('#p-size')) > 0)) problems.push('a package file, or URL, SHA-256 and size');
      const when = $('#p-when').value;
      if (when === 'at') {
        const d = val('#p-activate-at') ? new Date(val('#p-activate-at')) : null;
        if (!d || isNaN(d)) problems.push('the date and time to activate at');
        else if (d.getTime() <= Date.now()) problems.push('an activation time in the future');
        else req.activate_at = rfc3339(d);
      } else if (when === 'after') {
        const n = Number(val('#p-after'));
        if (!Number.isInteger(n) || n < 1) problems.push('a delay of at least 1 (whole number)');
        else req.activate_after_seconds = n * Number($('#p-after-unit').value);
      }
    }
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
      } else if (kind === 'code_upgrade') {
        Object.assign(req, { package_url: val('#p-url'), package_hash: val('#p-hash'), package_size: Number(val('#p-size')) });
      }
      out.textContent = 'Proposing…';
      const r = await api('POST', '/upgrades/propose', req);
      const next = (r.next_steps || [])[(r.next_steps || []).length - 1];
      out.className = 'result ok';
      out.textContent = 'Proposed ' + r.proposal_id + ' (' + r.status + '). Every member can vote on it now.' + (next ? ' Then: ' + next + '.' : '');
      out.dataset.proposal = r.proposal_id;
      $('#propose-form').reset();
      syncForm();
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
    $('#p-type').addEventListener('change', syncForm);
    $('#p-when').addEventListener('change', syncForm);
    $('#p-target').addEventListener('input', renderTargets);
    $('#p-activate-at').addEventListener('input', showUTC);
    syncForm();
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
