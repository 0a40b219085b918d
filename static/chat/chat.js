/*
 * Anyhour chat client: the browser side of docs/protocol.md.
 *
 * No framework, no build step. Needs (loaded before this file): the Django JavaScript catalog
 * (gettext, ngettext, interpolate), vendor/marked.umd.js and vendor/purify.min.js, and the
 * json_script blocks "chat-config" and "initial-messages".
 */
(function () {
  'use strict';

  // --- i18n ------------------------------------------------------------------------------------
  const gettext = typeof window.gettext === 'function' ? window.gettext : (s) => s;
  const ngettext = typeof window.ngettext === 'function'
    ? window.ngettext
    : (singular, plural, n) => (n === 1 ? singular : plural);
  const interpolate = typeof window.interpolate === 'function'
    ? window.interpolate
    : (fmt, obj, named) => (named
      ? fmt.replace(/%\(\w+\)s/g, (m) => String(obj[m.slice(2, -2)]))
      : fmt.replace(/%s/g, () => String(obj.shift())));

  // --- configuration ---------------------------------------------------------------------------
  function readJson(id, fallback) {
    const el = document.getElementById(id);
    if (!el) return fallback;
    try {
      const value = JSON.parse(el.textContent);
      return value === null || value === undefined ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  const cfg = readJson('chat-config', {});
  const persona = cfg.persona || {};
  // Website widget mode (docs/widget.md): no cookies in a cross-site iframe, so the visitor is a
  // signed token kept in this frame's (partitioned) localStorage, sent as a header and as a
  // websocket subprotocol. The current conversation id is kept next to it.
  const widget = cfg.widget && typeof cfg.widget === 'object' ? cfg.widget : null;
  const MAX_CHARS = Number(cfg.maxMessageChars) || 4000;
  const PING_INTERVAL_MS = 25000;
  const DEAD_SOCKET_MS = 65000; // nothing received for this long (pongs included): reconnect
  const BACKOFF_START_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const FLOOD_PAUSE_MS = 10000;
  const NEAR_BOTTOM_PX = 96;
  const TITLE_LENGTH = 60; // as chat/services.py
  const FINAL_STATUSES = new Set(['complete', 'stopped', 'failed', 'interrupted']);
  const COMPOSER_ERRORS = new Set(['too_long', 'rate_limited', 'busy', 'empty']);
  // Frames only the conversation's customer may send; a read-only view never sends them.
  const WRITE_FRAMES = new Set(['send', 'stop', 'regenerate']);

  // --- DOM -------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const dom = {
    messages: $('messages'),
    composer: $('composer'),
    form: $('composer-form'),
    send: $('send-btn'),
    stop: $('stop-btn'),
    regenerate: $('regenerate-btn'),
    counter: $('char-count'),
    notice: $('notice'),
    conn: $('conn-status'),
    banner: $('engine-banner'),
    jump: $('jump-btn'),
    sidebar: $('sidebar'),
    menu: $('menu-btn'),
    backdrop: $('drawer-backdrop'),
    convList: $('conversation-list'),
    langNext: $('language-next'),
    loginLink: $('login-link'),
    readOnlyBar: $('read-only-notice'),
  };

  // --- Unicode code points (protocol offsets count code points, not UTF-16 units) ---------------
  function cpLength(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      // A high surrogate followed by a low one is one code point.
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
      n++;
    }
    return n;
  }

  function dropCodePoints(s, count) {
    let i = 0;
    while (count > 0 && i < s.length) {
      const c = s.codePointAt(i);
      i += c > 0xffff ? 2 : 1;
      count--;
    }
    return s.slice(i);
  }

  function firstCodePoints(s, count) {
    return Array.from(s).slice(0, count).join('');
  }

  // --- widget visitor identity -------------------------------------------------------------------
  // Where the identity (token + current conversation id) is kept, best first:
  // 1. the host page's own localStorage, through anyhour-widget.js (first-party storage: it
  //    survives where this third-party frame's storage is blocked, e.g. with third-party cookies
  //    blocked in Chrome, Safari, Brave); it hands it over with an "anyhour:hello" message;
  // 2. this frame's localStorage (partitioned by the top-level site where browsers partition);
  // 3. memory only: a new visitor on every page (storage blocked and no host script).
  const widgetIdentity = { token: null, conversation: null, parentOrigin: null };
  const HELLO_TIMEOUT_MS = 2000;

  function frameStorageGet() {
    try {
      const value = JSON.parse(window.localStorage.getItem(widget.storageKey) || 'null');
      return value && typeof value === 'object' ? value : {};
    } catch (e) {
      return {};
    }
  }

  /** Whether ``origin`` is on the widget's allow-list (exact, or the ``scheme://*.domain`` form). */
  function originAllowed(origin, allowed) {
    const match = /^(https?):\/\/([^/:]+)(?::(\d+))?$/.exec(String(origin || ''));
    if (!match) return false;
    return (allowed || []).some((entry) => {
      if (entry === origin) return true;
      const wild = /^(https?):\/\/\*\.([^/:]+)(?::(\d+))?$/.exec(entry);
      return Boolean(wild) && wild[1] === match[1] && (wild[3] || '') === (match[3] || '')
        && match[2].endsWith('.' + wild[2]);
    });
  }

  function adoptIdentity(value) {
    if (!value || typeof value !== 'object') return false;
    if (typeof value.token !== 'string' || !value.token) return false;
    widgetIdentity.token = value.token;
    widgetIdentity.conversation = typeof value.conversation === 'string' && value.conversation ? value.conversation : null;
    return true;
  }

  function widgetSave(changes) {
    Object.assign(widgetIdentity, changes);
    const value = { token: widgetIdentity.token, conversation: widgetIdentity.conversation };
    try {
      window.localStorage.setItem(widget.storageKey, JSON.stringify(value));
    } catch (e) { /* blocked third-party storage: the host page keeps it */ }
    if (widgetIdentity.parentOrigin) {
      window.parent.postMessage({ type: 'anyhour:identity', identity: value }, widgetIdentity.parentOrigin);
    }
  }

  function widgetToken() {
    if (!widgetIdentity.token) widgetSave({ token: widget.token }); // issued with this page: a new visitor
    return widgetIdentity.token;
  }

  /** Learn who this visitor is, then call ``done`` (once). */
  function resolveWidgetIdentity(done) {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      done();
    };
    if (window.parent === window) { // opened on its own, not framed
      adoptIdentity(frameStorageGet());
      finish();
      return;
    }
    window.addEventListener('message', (event) => {
      if (event.source !== window.parent || !event.data || event.data.type !== 'anyhour:hello') return;
      // Only the sites on the list may frame this page at all (CSP); check again here.
      if (!originAllowed(event.origin, widget.origins)) return;
      widgetIdentity.parentOrigin = event.origin;
      if (!finished) {
        if (!adoptIdentity(event.data.identity)) adoptIdentity(frameStorageGet());
        finish();
      }
      if (widgetIdentity.token) widgetSave({}); // keep both stores in step
    });
    setTimeout(() => { // no host script (the frame was embedded by hand): this frame's storage only
      if (!finished) adoptIdentity(frameStorageGet());
      finish();
    }, HELLO_TIMEOUT_MS);
  }

  /** Start over in the widget: forget the conversation (and with ``identity`` the visitor). */
  function widgetReset(identity) {
    widgetSave(identity ? { token: null, conversation: null } : { conversation: null });
    setTimeout(() => window.location.reload(), 100); // let the host page store the change first
  }

  // --- state -----------------------------------------------------------------------------------
  const state = {
    conversationId: cfg.conversationId || null,
    engine: cfg.engine || 'up',
    messages: new Map(), // seq -> message
    elements: new Map(), // seq -> element
    pending: [], // {clientId, text, el, sentOn}
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    lastReceived: 0,
    blocked: false, // 4403: never reconnect
    creating: false, // POST /c/new/ in flight
    awaitingRegenerate: false,
    lastResume: null, // {seq, offset} of the last gap-driven resume, to send it once
    dirty: new Set(), // seqs to re-render at the next animation frame
    frameRequested: false,
    noticeTimer: null,
    compositionEndedAt: 0,
    // An agent or admin reading a customer's transcript: no composer, no stop/regenerate.
    readOnly: cfg.readOnly === true,
  };

  // --- Markdown --------------------------------------------------------------------------------
  const ALLOWED_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
  const PURIFY_CONFIG = {
    ALLOWED_TAGS: [
      'a', 'b', 'blockquote', 'br', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
      'hr', 'i', 'kbd', 'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table',
      'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'u', 'ul',
    ],
    ALLOWED_ATTR: ['href', 'title', 'class', 'start', 'align', 'colspan', 'rowspan', 'lang', 'dir'],
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
  };

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    }[c]));
  }

  let markdown = null;
  if (window.marked && typeof window.marked.Marked === 'function') {
    markdown = new window.marked.Marked({ gfm: true, breaks: true, async: false });
    markdown.use({
      renderer: {
        // No remote images in answers (tracking pixels, exfiltration through image URLs):
        // an image becomes a plain link to it.
        image(token) {
          const label = token.text || token.href || '';
          return '<a href="' + escapeHtml(token.href || '') + '">' + escapeHtml(label) + '</a>';
        },
      },
    });
  }

  const purify = window.DOMPurify && typeof window.DOMPurify.sanitize === 'function' ? window.DOMPurify : null;
  if (purify) {
    purify.addHook('afterSanitizeAttributes', (node) => {
      if (node.hasAttribute && node.hasAttribute('class')) {
        const kept = node.getAttribute('class').split(/\s+/).filter((c) => /^language-[\w+#.-]{1,40}$/.test(c));
        if (kept.length) node.setAttribute('class', kept.join(' '));
        else node.removeAttribute('class');
      }
      if (node.tagName === 'A') {
        const href = node.getAttribute('href');
        if (href !== null) {
          let ok = false;
          try {
            ok = ALLOWED_PROTOCOLS.has(new URL(href, window.location.href).protocol);
          } catch (e) {
            ok = false;
          }
          if (!ok) node.removeAttribute('href');
        }
        if (node.hasAttribute('href')) {
          node.setAttribute('target', '_blank');
          node.setAttribute('rel', 'noopener noreferrer nofollow');
        } else {
          node.removeAttribute('target');
        }
      }
    });
  }

  /** Sanitised HTML for assistant/agent Markdown; plain escaped text if a library is missing. */
  function renderMarkdown(text) {
    if (!purify) {
      return '<p>' + escapeHtml(text).replace(/\n/g, '<br>') + '</p>';
    }
    let html;
    try {
      html = markdown ? markdown.parse(text) : '<p>' + escapeHtml(text).replace(/\n/g, '<br>') + '</p>';
    } catch (e) {
      html = '<p>' + escapeHtml(text).replace(/\n/g, '<br>') + '</p>';
    }
    return purify.sanitize(html, PURIFY_CONFIG);
  }

  // --- text for codes --------------------------------------------------------------------------
  function failureText(code) {
    switch (code) {
      case 'engine_unavailable':
        return persona.unavailableText || gettext('The assistant is unavailable right now. Please try again in a few minutes.');
      case 'engine_timeout':
        return gettext('The assistant took too long to answer. Please try again.');
      case 'engine_error':
        return gettext('The answer was cut off by a problem with the assistant. You can regenerate it.');
      case 'context_overflow':
        return gettext('This conversation has become too long for the assistant. Please start a new conversation.');
      case 'interrupted':
        return gettext('This answer was interrupted. You can regenerate it.');
      default:
        return gettext('Something went wrong on our side. Please try again.');
    }
  }

  function errorNotice(frame) {
    switch (frame.code) {
      case 'too_long':
        return interpolate(gettext('Your message is too long (max %(max)s characters).'), { max: MAX_CHARS }, true);
      case 'rate_limited': {
        const seconds = Math.max(1, Math.ceil(Number(frame.retry_after) || 1));
        return interpolate(ngettext(
          'You are sending too fast. Please wait %(seconds)s second.',
          'You are sending too fast. Please wait %(seconds)s seconds.',
          seconds), { seconds }, true);
      }
      case 'busy':
        return gettext('Please wait for the current answer, or stop it.');
      case 'empty':
        return gettext('Please type a message first.');
      case 'nothing_to_regenerate':
        return gettext('There is no question to answer again.');
      case 'not_generating':
        return '';
      case 'forbidden':
        return gettext('Only the customer of this conversation can write in it. You can read it, but not send, stop or regenerate.');
      case 'bad_frame':
      case 'unknown_type':
      case 'frame_too_large':
        return gettext('This page sent something the server did not understand. Please reload the page.');
      case 'engine_unavailable':
      case 'engine_timeout':
      case 'engine_error':
      case 'context_overflow':
      case 'internal_error':
        return failureText(frame.code);
      default:
        return gettext('Something went wrong on our side. Please try again.');
    }
  }

  // --- notices ---------------------------------------------------------------------------------
  function showNotice(text, kind, durationMs) {
    if (!dom.notice) return;
    clearTimeout(state.noticeTimer);
    if (!text) {
      dom.notice.hidden = true;
      dom.notice.textContent = '';
      return;
    }
    dom.notice.textContent = text;
    dom.notice.dataset.kind = kind || 'error';
    dom.notice.hidden = false;
    if (durationMs !== 0) {
      state.noticeTimer = setTimeout(() => showNotice(''), durationMs || 8000);
    }
  }

  // --- connection indicator --------------------------------------------------------------------
  function setConn(kind, text) {
    if (!dom.conn) return;
    const labels = {
      connecting: gettext('Connecting…'),
      connected: gettext('Online'),
      offline: gettext('Offline'),
    };
    dom.conn.dataset.state = kind;
    const label = dom.conn.querySelector('.conn-text') || dom.conn;
    label.textContent = text || labels[kind];
    renderPendingMeta();
  }

  function updateEngineBanner() {
    if (!dom.banner) return;
    const down = state.engine === 'none' || state.engine === 'down';
    const text = dom.banner.querySelector('.engine-banner-text') || dom.banner;
    text.textContent = persona.unavailableText || gettext('The assistant is unavailable right now');
    dom.banner.hidden = !down;
  }

  // --- scrolling -------------------------------------------------------------------------------
  function isNearBottom() {
    const el = dom.messages;
    return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    dom.messages.scrollTop = dom.messages.scrollHeight;
    if (dom.jump) dom.jump.hidden = true;
  }

  /** Run a DOM change; follow the bottom only if the reader was already there. */
  function keepingScroll(change, force) {
    const stick = force || isNearBottom();
    change();
    if (stick) scrollToBottom();
    else if (dom.jump) dom.jump.hidden = false;
  }

  // --- message elements ------------------------------------------------------------------------
  function timeLabel(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    const lang = document.documentElement.lang || undefined;
    const today = new Date();
    const sameDay = date.toDateString() === today.toDateString();
    try {
      return new Intl.DateTimeFormat(lang, sameDay
        ? { hour: '2-digit', minute: '2-digit' }
        : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }).format(date);
    } catch (e) {
      return date.toLocaleString();
    }
  }

  function whoLabel(role) {
    switch (role) {
      // A read-only reader (an agent or admin) is not the customer who wrote these.
      case 'user': return state.readOnly ? gettext('Customer') : gettext('You');
      case 'agent': return gettext('Support agent');
      case 'system': return gettext('System');
      default: return persona.name || gettext('Assistant');
    }
  }

  function createShell() {
    const el = document.createElement('div');
    el.className = 'msg';
    const content = document.createElement('div');
    content.className = 'content';
    const meta = document.createElement('div');
    meta.className = 'meta';
    el.append(content, meta);
    return el;
  }

  function placeCursor(content) {
    const cursor = document.createElement('span');
    cursor.className = 'cursor';
    cursor.setAttribute('aria-hidden', 'true');
    const lastMeaningful = (node) => {
      let child = node.lastChild;
      while (child && child.nodeType === Node.TEXT_NODE && !child.textContent.trim()) child = child.previousSibling;
      return child;
    };
    let target = content;
    let child = lastMeaningful(target);
    while (child && child.nodeType === Node.ELEMENT_NODE && !['BR', 'HR', 'TABLE'].includes(child.tagName)) {
      target = child;
      child = lastMeaningful(target);
    }
    target.appendChild(cursor);
  }

  function setMeta(el, msg) {
    const meta = el.querySelector(':scope > .meta');
    meta.textContent = '';
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = whoLabel(msg.role);
    meta.appendChild(who);
    const when = timeLabel(msg.created_at);
    if (when) {
      const time = document.createElement('time');
      time.dateTime = msg.created_at;
      time.textContent = when;
      meta.appendChild(time);
    }
    if (msg.status === 'stopped') {
      const label = document.createElement('span');
      label.className = 'status-label';
      label.textContent = gettext('(stopped)');
      meta.appendChild(label);
    }
  }

  function setNote(el, text, kind) {
    let note = el.querySelector(':scope > .note');
    if (!text) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      note = document.createElement('div');
      note.className = 'note';
      el.querySelector(':scope > .meta').before(note);
    }
    note.dataset.kind = kind;
    note.textContent = text;
  }

  function setSuperseded(el, superseded) {
    let toggle = el.querySelector(':scope > .superseded-toggle');
    if (!superseded) {
      delete el.dataset.superseded;
      if (toggle) toggle.remove();
      return;
    }
    el.dataset.superseded = 'true';
    if (!toggle) {
      toggle = document.createElement('button');
      toggle.type = 'button';
      toggle.className = 'superseded-toggle';
      toggle.setAttribute('aria-expanded', 'false');
      toggle.textContent = gettext('Earlier answer');
      toggle.addEventListener('click', () => {
        const open = el.dataset.expanded === 'true';
        el.dataset.expanded = open ? 'false' : 'true';
        toggle.setAttribute('aria-expanded', open ? 'false' : 'true');
      });
      el.prepend(toggle);
    }
    if (!el.dataset.expanded) el.dataset.expanded = 'false';
  }

  function renderContent(el, msg) {
    const content = el.querySelector(':scope > .content');
    if (msg.role === 'user' || msg.role === 'system') {
      content.textContent = msg.content;
    } else if (msg.status === 'streaming' && !msg.content) {
      content.innerHTML = '';
      const typing = document.createElement('span');
      typing.className = 'typing';
      typing.setAttribute('aria-label', gettext('The assistant is typing'));
      typing.append(document.createElement('span'), document.createElement('span'), document.createElement('span'));
      content.appendChild(typing);
    } else {
      content.innerHTML = renderMarkdown(msg.content);
      if (msg.status === 'streaming') placeCursor(content);
    }
    content.hidden = !msg.content && msg.status !== 'streaming';
  }

  function renderMessage(msg) {
    let el = state.elements.get(msg.seq);
    if (!el) {
      el = createShell();
      insertBySeq(el, msg.seq);
      state.elements.set(msg.seq, el);
    }
    el.dataset.seq = String(msg.seq);
    el.dataset.role = msg.role;
    el.dataset.status = msg.status;
    delete el.dataset.pending;
    if (msg.client_id) el.dataset.clientId = msg.client_id;
    if (msg.error_code) el.dataset.errorCode = msg.error_code;
    else delete el.dataset.errorCode;
    renderContent(el, msg);
    setMeta(el, msg);
    setSources(el, msg);
    if (msg.status === 'failed') {
      setNote(el, failureText(msg.error_code), msg.error_code === 'engine_unavailable' ? 'unavailable' : 'error');
    }
    else if (msg.status === 'interrupted') setNote(el, failureText('interrupted'), 'warning');
    else setNote(el, '');
    setSuperseded(el, Boolean(msg.superseded));
  }

  /** The knowledge articles an answer used, as links under it (knowledge app, docs/knowledge.md). */
  function setSources(el, msg) {
    let box = el.querySelector('.sources');
    const items = (msg.sources || []).filter((s) => s && typeof s.url === 'string' && s.url.charAt(0) === '/');
    if (!items.length) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = document.createElement('div');
      box.className = 'sources';
      el.insertBefore(box, el.querySelector('.meta'));
    }
    box.textContent = '';
    const label = document.createElement('span');
    label.className = 'sources-label';
    label.textContent = gettext('Sources:');
    box.appendChild(label);
    for (const item of items) {
      const link = document.createElement('a');
      link.href = item.url;
      link.target = '_blank';
      link.rel = 'noopener';
      link.textContent = String(item.title || item.url);
      box.appendChild(link);
    }
  }

  function insertBySeq(el, seq) {
    for (const other of dom.messages.children) {
      const otherSeq = Number(other.dataset.seq);
      if (other.dataset.seq && otherSeq > seq) {
        dom.messages.insertBefore(el, other);
        return;
      }
      if (other.dataset.pending === 'true') {
        dom.messages.insertBefore(el, other);
        return;
      }
    }
    dom.messages.appendChild(el);
  }

  function scheduleRender(seq) {
    state.dirty.add(seq);
    if (state.frameRequested) return;
    state.frameRequested = true;
    window.requestAnimationFrame(flushRenders);
  }

  function flushRenders() {
    state.frameRequested = false;
    if (!state.dirty.size) return;
    const seqs = Array.from(state.dirty);
    state.dirty.clear();
    keepingScroll(() => {
      for (const seq of seqs) {
        const msg = state.messages.get(seq);
        if (msg) renderMessage(msg);
      }
    });
  }

  function renderNow(msg, forceScroll) {
    state.dirty.delete(msg.seq);
    keepingScroll(() => renderMessage(msg), forceScroll);
  }

  // --- greeting --------------------------------------------------------------------------------
  function showGreeting() {
    if (!persona.greeting || $('greeting')) return;
    const el = createShell();
    el.id = 'greeting';
    el.classList.add('msg-greeting');
    el.dataset.role = 'assistant';
    el.dataset.greeting = 'true';
    el.querySelector('.content').innerHTML = renderMarkdown(persona.greeting);
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = whoLabel('assistant');
    el.querySelector('.meta').appendChild(who);
    dom.messages.prepend(el);
  }

  // --- message state ---------------------------------------------------------------------------
  function normalise(raw) {
    const content = typeof raw.content === 'string' ? raw.content : '';
    return {
      seq: raw.seq,
      role: raw.role || 'assistant',
      content,
      cpLen: cpLength(content),
      status: raw.status || 'complete',
      created_at: raw.created_at || null,
      error_code: raw.error_code || null,
      client_id: raw.client_id || null,
      superseded: Boolean(raw.superseded),
      model: raw.model || null,
      finish_reason: raw.finish_reason || null,
      usage: raw.usage || null,
      sources: Array.isArray(raw.sources) ? raw.sources : [],
    };
  }

  /** `message` and `end`: the frame is authoritative (content replaced). */
  function upsertWhole(raw, forceScroll) {
    if (!raw || typeof raw.seq !== 'number') return null;
    const msg = normalise(raw);
    state.messages.set(msg.seq, msg);
    if (state.lastResume && state.lastResume.seq === msg.seq) state.lastResume = null;
    renderNow(msg, forceScroll);
    return msg;
  }

  /** `start`: an answer starts or is being resumed; keep what we already have of it. */
  function upsertStart(raw) {
    if (!raw || typeof raw.seq !== 'number') return;
    const incoming = normalise(raw);
    incoming.status = 'streaming';
    const current = state.messages.get(incoming.seq);
    if (current && FINAL_STATUSES.has(current.status)) return; // a late replay of a finished answer
    if (current && current.cpLen > incoming.cpLen) {
      incoming.content = current.content;
      incoming.cpLen = current.cpLen;
    }
    state.messages.set(incoming.seq, incoming);
    renderNow(incoming);
  }

  function applyDelta(frame) {
    const seq = frame.seq;
    const offset = frame.offset;
    const text = typeof frame.text === 'string' ? frame.text : '';
    if (typeof seq !== 'number' || typeof offset !== 'number') return;
    let msg = state.messages.get(seq);
    if (!msg) {
      if (offset !== 0) {
        requestResume(seq, 0);
        return;
      }
      msg = normalise({ seq, role: 'assistant', content: '', status: 'streaming' });
      state.messages.set(seq, msg);
    }
    if (msg.status !== 'streaming') return;
    const have = msg.cpLen;
    if (offset > have) {
      requestResume(seq, have);
      return;
    }
    const tail = offset < have ? dropCodePoints(text, have - offset) : text;
    if (!tail) return;
    msg.content += tail;
    msg.cpLen += cpLength(tail);
    state.lastResume = null;
    scheduleRender(seq);
  }

  function lastSeq() {
    let max = 0;
    for (const seq of state.messages.keys()) if (seq > max) max = seq;
    return max;
  }

  function isStreaming() {
    for (const msg of state.messages.values()) if (msg.status === 'streaming') return true;
    return false;
  }

  function resumePoint() {
    let earliest = null;
    for (const msg of state.messages.values()) {
      if (msg.status === 'streaming' && (earliest === null || msg.seq < earliest.seq)) earliest = msg;
    }
    if (earliest) return { seq: earliest.seq, offset: earliest.cpLen };
    return { seq: lastSeq() + 1, offset: 0 };
  }

  function requestResume(seq, offset) {
    const last = state.lastResume;
    if (last && last.seq === seq && last.offset === offset) return;
    if (sendFrame({ type: 'resume', seq, offset })) state.lastResume = { seq, offset };
  }

  // --- pending (unacknowledged) user messages --------------------------------------------------
  function newClientId() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === 'function') {
      try {
        return c.randomUUID();
      } catch (e) { /* insecure context: fall through */ }
    }
    if (c && typeof c.getRandomValues === 'function') {
      const bytes = new Uint8Array(16);
      c.getRandomValues(bytes);
      return 'c-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    }
    return 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  function pendingMetaText() {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return gettext('Waiting for connection…');
    return gettext('Sending…');
  }

  function renderPendingMeta() {
    for (const p of state.pending) {
      const meta = p.el.querySelector('.meta');
      meta.textContent = '';
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = whoLabel('user');
      const label = document.createElement('span');
      label.className = 'status-label';
      label.textContent = pendingMetaText();
      meta.append(who, label);
    }
  }

  function addPending(text) {
    const clientId = newClientId();
    const el = createShell();
    el.dataset.role = 'user';
    el.dataset.status = 'pending';
    el.dataset.pending = 'true';
    el.dataset.clientId = clientId;
    el.querySelector('.content').textContent = text;
    const entry = { clientId, text, el, sentOn: null, sentAt: 0 };
    state.pending.push(entry);
    keepingScroll(() => dom.messages.appendChild(el), true);
    renderPendingMeta();
    return entry;
  }

  function findPending(clientId) {
    return state.pending.find((p) => p.clientId === clientId) || null;
  }

  function dropPending(entry) {
    state.pending = state.pending.filter((p) => p !== entry);
    entry.el.remove();
  }

  /** The server has the message: its pending bubble becomes the bubble of that seq. */
  function resolvePending(clientId, raw) {
    const entry = clientId ? findPending(clientId) : null;
    if (!entry) return;
    state.pending = state.pending.filter((p) => p !== entry);
    if (raw && typeof raw.seq === 'number' && !state.elements.has(raw.seq)) {
      delete entry.el.dataset.pending;
      entry.el.remove();
      entry.el.dataset.seq = String(raw.seq);
      insertBySeq(entry.el, raw.seq);
      state.elements.set(raw.seq, entry.el);
    } else {
      entry.el.remove();
    }
  }

  function flushPending() {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    for (const p of state.pending) {
      if (p.sentOn === ws) continue;
      if (sendFrame({ type: 'send', text: p.text, client_id: p.clientId })) {
        p.sentOn = ws;
        p.sentAt = Date.now();
      }
    }
    renderPendingMeta();
  }

  function restoreComposer(text) {
    if (state.readOnly || !dom.composer) return;
    const current = dom.composer.value;
    if (!current.trim()) dom.composer.value = text;
    else if (current !== text && !current.startsWith(text)) dom.composer.value = text + '\n' + current;
    onComposerInput();
    dom.composer.focus();
  }

  // --- websocket -------------------------------------------------------------------------------
  function sendFrame(frame) {
    if (state.readOnly && WRITE_FRAMES.has(frame.type)) return false;
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }

  function socketUrl() {
    const path = String(cfg.wsPathTemplate || '/ws/chat/{id}/').replace('{id}', encodeURIComponent(state.conversationId));
    return (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + path;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (!state.conversationId || state.blocked) return;
    if (state.ws && (state.ws.readyState === WebSocket.OPEN || state.ws.readyState === WebSocket.CONNECTING)) return;
    if (navigator.onLine === false) {
      setConn('offline');
      return;
    }
    setConn('connecting');
    let ws;
    try {
      ws = widget
        ? new WebSocket(socketUrl(), [widget.subprotocol, widget.tokenSubprotocolPrefix + widgetToken()])
        : new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.addEventListener('open', () => {
      if (state.ws !== ws) return;
      state.lastReceived = Date.now();
      state.lastResume = null;
      setConn(navigator.onLine === false ? 'offline' : 'connected');
      const point = resumePoint();
      sendFrame({ type: 'resume', seq: point.seq, offset: point.offset });
      flushPending();
      startPing();
      updateControls();
    });
    ws.addEventListener('message', (event) => {
      if (state.ws !== ws) return;
      state.lastReceived = Date.now();
      if (typeof event.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame === 'object') handleFrame(frame);
    });
    ws.addEventListener('close', (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      stopPing();
      handleClose(event.code);
    });
  }

  /** Forget a socket without waiting for its close event (a dead one may take minutes to close). */
  function abandonSocket() {
    const ws = state.ws;
    state.ws = null;
    stopPing();
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) { /* already closed */ }
    }
  }

  function handleClose(code) {
    state.awaitingRegenerate = false;
    updateControls();
    renderPendingMeta();
    if (widget && (code === 4403 || code === 4401)) {
      // The stored conversation is gone (4403) or the visitor token expired (4401): start over.
      state.blocked = true;
      setConn('offline');
      showNotice(gettext('This conversation has ended. Starting a new one…'), 'warning', 0);
      setTimeout(() => widgetReset(code === 4401), 1500);
      return;
    }
    if (code === 4403) {
      state.blocked = true;
      setConn('offline', gettext('Not available'));
      showNotice(gettext('This conversation is not available.'), 'error', 0);
      updateControls();
      return;
    }
    if (code === 4401) {
      state.blocked = true;
      setConn('offline');
      showNotice(gettext('Your session has ended. Reloading…'), 'error', 0);
      setTimeout(() => window.location.reload(), 1500);
      return;
    }
    if (code === 4429) {
      showNotice(gettext('Too many requests. Reconnecting in a few seconds…'), 'warning', FLOOD_PAUSE_MS);
      scheduleReconnect(FLOOD_PAUSE_MS);
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect(delayMs) {
    clearTimeout(state.reconnectTimer);
    if (state.blocked || !state.conversationId) return;
    if (navigator.onLine === false) {
      setConn('offline');
      return; // the "online" event reconnects
    }
    let delay = delayMs;
    if (delay === undefined) {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** state.attempt);
      delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
      state.attempt += 1;
    }
    setConn('connecting', gettext('Reconnecting…'));
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function startPing() {
    stopPing();
    state.pingTimer = setInterval(() => {
      if (Date.now() - state.lastReceived > DEAD_SOCKET_MS) {
        abandonSocket();
        scheduleReconnect(0);
        return;
      }
      sendFrame({ type: 'ping' });
    }, PING_INTERVAL_MS);
  }

  function stopPing() {
    clearInterval(state.pingTimer);
    state.pingTimer = null;
  }

  // --- frames in -------------------------------------------------------------------------------
  function handleFrame(frame) {
    switch (frame.type) {
      case 'ready':
        state.attempt = 0;
        if (typeof frame.engine === 'string') {
          state.engine = frame.engine;
          updateEngineBanner();
        }
        break;
      case 'ack':
        resolvePending(frame.client_id, frame.message);
        upsertWhole(frame.message);
        break;
      case 'message':
        if (frame.message && frame.message.client_id) resolvePending(frame.message.client_id, frame.message);
        upsertWhole(frame.message);
        break;
      case 'start':
        state.awaitingRegenerate = false;
        upsertStart(frame.message);
        break;
      case 'delta':
        applyDelta(frame);
        break;
      case 'end':
        upsertWhole(frame.message);
        break;
      case 'error':
        handleError(frame);
        break;
      case 'pong':
      default:
        break;
    }
    updateControls();
  }

  function handleError(frame) {
    const code = frame.code;
    if (code === 'forbidden') {
      // The server refuses writes from this view: from now on it is read-only.
      for (const entry of state.pending.slice()) dropPending(entry);
      state.awaitingRegenerate = false;
      enterReadOnly();
      showNotice(errorNotice(frame), 'warning', 0);
      return;
    }
    if (COMPOSER_ERRORS.has(code)) {
      let entry = frame.client_id ? findPending(frame.client_id) : null;
      // too_long/empty (and a flood refusal) come without client_id: they answer our latest send.
      if (!entry && !frame.client_id && code !== 'busy' && state.pending.length) {
        const last = state.pending[state.pending.length - 1];
        if (last.sentOn && Date.now() - last.sentAt < 10000) entry = last;
      }
      if (entry) {
        dropPending(entry);
        restoreComposer(entry.text);
      }
    }
    if (code === 'busy' || code === 'nothing_to_regenerate') state.awaitingRegenerate = false;
    const text = errorNotice(frame);
    if (text) {
      const seconds = Number(frame.retry_after) || 0;
      showNotice(text, code === 'busy' || code === 'rate_limited' ? 'warning' : 'error', Math.max(8000, seconds * 1000));
    }
  }

  // --- controls --------------------------------------------------------------------------------
  function lastMessage() {
    let last = null;
    for (const msg of state.messages.values()) {
      if (msg.role === 'system') continue;
      if (!last || msg.seq > last.seq) last = msg;
    }
    return last;
  }

  function updateControls() {
    if (state.readOnly || !dom.send) return;
    const streaming = isStreaming();
    const connected = Boolean(state.ws && state.ws.readyState === WebSocket.OPEN);
    dom.send.disabled = streaming || state.pending.length > 0 || state.blocked || state.creating || Boolean(state.widgetPending);
    dom.send.classList.toggle('is-empty', !dom.composer.value.trim());
    dom.stop.hidden = !streaming;
    const last = lastMessage();
    dom.regenerate.hidden = !(
      last && last.role === 'assistant' && FINAL_STATUSES.has(last.status) && !streaming
      && state.pending.length === 0 && !state.blocked && !state.awaitingRegenerate && state.conversationId
    );
    dom.regenerate.disabled = !connected;
    dom.stop.disabled = !connected;
  }

  function onComposerInput() {
    if (!dom.composer) return;
    const length = cpLength(dom.composer.value);
    if (dom.counter) {
      const show = length >= Math.floor(MAX_CHARS * 0.8);
      dom.counter.hidden = !show;
      dom.counter.textContent = show ? interpolate('%(count)s / %(max)s', { count: length, max: MAX_CHARS }, true) : '';
      dom.counter.dataset.over = length > MAX_CHARS ? 'true' : 'false';
    }
    autosize();
    updateControls();
  }

  function autosize() {
    const el = dom.composer;
    el.style.height = 'auto';
    const max = Math.max(120, Math.round(window.innerHeight * 0.35));
    el.style.height = Math.min(el.scrollHeight + 2, max) + 'px';
    el.style.overflowY = el.scrollHeight + 2 > max ? 'auto' : 'hidden';
  }

  // --- sending ---------------------------------------------------------------------------------
  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : '';
  }

  function conversationTitle(text) {
    return firstCodePoints(text.split(/\s+/).filter(Boolean).join(' '), TITLE_LENGTH);
  }

  function addToSidebar(id, url, title) {
    if (!dom.convList) return;
    const empty = $('conversation-list-empty');
    if (empty) empty.remove();
    for (const link of dom.convList.querySelectorAll('a[aria-current]')) link.removeAttribute('aria-current');
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.className = 'conv-link';
    link.href = url;
    link.dataset.conversationId = id;
    link.setAttribute('aria-current', 'page');
    const span = document.createElement('span');
    span.className = 'conv-title';
    span.textContent = title || gettext('New conversation');
    const time = document.createElement('time');
    time.className = 'conv-time';
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = timeLabel(now.toISOString());
    link.append(span, time);
    li.appendChild(link);
    li.className = 'conv-item';
    enhanceItem(li);
    setHistoryStatus('');
    dom.convList.prepend(li);
  }

  /** The Export menu exists (hidden) on a new-conversation page: point it at the new id and show it. */
  function showExportMenu(id) {
    const menu = document.getElementById('export-menu');
    if (!menu) return;
    menu.querySelectorAll('a[data-export-template]').forEach((link) => {
      link.href = link.dataset.exportTemplate.replace('__id__', encodeURIComponent(id));
    });
    menu.hidden = false;
  }

  async function createConversation(text) {
    state.creating = true;
    updateControls();
    try {
      let response;
      try {
        const headers = { Accept: 'application/json' };
        if (widget) headers[widget.tokenHeader] = widgetToken(); // no cookies, no CSRF token
        else headers['X-CSRFToken'] = csrfToken();
        response = await fetch(cfg.newConversationUrl, {
          method: 'POST',
          credentials: widget ? 'omit' : 'same-origin',
          headers,
        });
      } catch (e) {
        showNotice(gettext('Could not reach the server. Check your connection and try again.'), 'error');
        return false;
      }
      let data = null;
      try {
        data = await response.json();
      } catch (e) {
        data = null;
      }
      if (response.status === 429) {
        const retry = data && data.error ? data.error.retry_after : 60;
        showNotice(errorNotice({ code: 'rate_limited', retry_after: retry }), 'warning');
        return false;
      }
      if (widget && response.status === 401) {
        widgetReset(true); // the visitor token expired: a new visitor
        return false;
      }
      if (!response.ok || !data || !data.id) {
        showNotice(gettext('Could not start a conversation. Please reload the page and try again.'), 'error');
        return false;
      }
      state.conversationId = data.id;
      if (widget) {
        // The frame keeps its URL; the conversation is remembered for the next page the
        // visitor opens on the company's site.
        widgetSave({ conversation: data.id });
        return true;
      }
      const url = data.url || String(cfg.conversationUrlTemplate || '/c/{id}/').replace('{id}', data.id);
      try {
        window.history.replaceState({ conversationId: data.id }, '', url);
      } catch (e) { /* very old browsers */ }
      if (dom.langNext) dom.langNext.value = url;
      if (dom.loginLink) {
        // "Log in" brings a guest back to this conversation (it becomes theirs at login).
        const login = new URL(dom.loginLink.href, window.location.href);
        login.searchParams.set('next', url);
        dom.loginLink.href = login.pathname + login.search;
      }
      showExportMenu(data.id);
      addToSidebar(data.id, url, conversationTitle(text));
      document.title = conversationTitle(text) + ' · Anyhour';
      return true;
    } finally {
      state.creating = false;
      updateControls();
    }
  }

  async function submit() {
    if (state.readOnly) return;
    if (state.widgetPending) {
      state.submitWhenReady = true; // sent as soon as the visitor's identity is known
      return;
    }
    const text = dom.composer.value.trim();
    if (!text) return;
    if (cpLength(text) > MAX_CHARS) {
      showNotice(errorNotice({ code: 'too_long' }), 'error');
      return;
    }
    if (isStreaming()) {
      showNotice(errorNotice({ code: 'busy' }), 'warning');
      return;
    }
    if (dom.send.disabled) return;
    if (state.blocked) return;
    dom.composer.value = '';
    onComposerInput();
    showNotice('');
    const entry = addPending(text);
    updateControls();
    if (!state.conversationId) {
      const created = await createConversation(text);
      if (!created) {
        dropPending(entry);
        restoreComposer(text);
        updateControls();
        return;
      }
      connect(); // sends the pending message once open
      return;
    }
    if (state.ws && state.ws.readyState === WebSocket.OPEN) flushPending();
    else if (!state.ws) connect();
    updateControls();
  }

  // --- history: search, archive, rename, delete (the sidebar) ---------------------------------
  const SEARCH_DEBOUNCE_MS = 250;
  const history = {
    mode: 'active', // 'active' | 'archived' | 'search'
    query: '',
    timer: null,
    request: 0, // number of the latest list request: older answers are dropped
    openMenu: null,
  };

  function actionUrl(id, action) {
    return String(cfg.conversationActionUrlTemplate || '/c/{id}/{action}/')
      .replace('{id}', encodeURIComponent(id)).replace('{action}', action);
  }

  async function postAction(id, action, fields) {
    const body = new URLSearchParams(fields || {});
    let response;
    try {
      response = await fetch(actionUrl(id, action), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRFToken': csrfToken(), Accept: 'application/json' },
        body,
      });
    } catch (e) {
      showNotice(gettext('Could not reach the server. Check your connection and try again.'), 'error');
      return null;
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message;
      showNotice(message || gettext('Something went wrong on our side. Please try again.'), 'error');
      return null;
    }
    return data || {};
  }

  function setHistoryStatus(text) {
    const status = $('history-status');
    if (!status) return;
    status.textContent = text || '';
    status.hidden = !text;
  }

  function setSidebarTitle() {
    const title = $('sidebar-title');
    if (title) {
      const key = history.mode === 'search' ? 'resultsLabel' : history.mode === 'archived' ? 'archivedLabel' : 'activeLabel';
      if (title.dataset[key]) title.textContent = title.dataset[key];
    }
    const toggle = $('archived-toggle');
    if (toggle) {
      toggle.hidden = history.mode === 'search';
      const archived = history.mode === 'archived';
      toggle.setAttribute('aria-pressed', archived ? 'true' : 'false');
      toggle.textContent = archived ? toggle.dataset.hideLabel : toggle.dataset.showLabel;
    }
  }

  /** A list item built from a JSON item, with text only (titles and snippets are user text). */
  function historyItem(item) {
    const li = document.createElement('li');
    li.className = 'conv-item';
    const link = document.createElement('a');
    link.className = 'conv-link';
    link.href = item.url || String(cfg.conversationUrlTemplate || '/c/{id}/').replace('{id}', item.id);
    link.dataset.conversationId = item.id;
    if (item.archived) link.dataset.archived = 'true';
    if (item.id === state.conversationId) link.setAttribute('aria-current', 'page');
    const title = document.createElement('span');
    title.className = 'conv-title';
    title.textContent = item.title || gettext('New conversation');
    link.appendChild(title);
    if (item.snippet) {
      const snippet = document.createElement('span');
      snippet.className = 'conv-snippet';
      const mark = document.createElement('mark');
      mark.textContent = item.snippet.match;
      snippet.append(document.createTextNode(item.snippet.before), mark, document.createTextNode(item.snippet.after));
      link.appendChild(snippet);
    }
    const time = document.createElement('time');
    time.className = 'conv-time';
    time.dateTime = item.updated_at || '';
    time.textContent = timeLabel(item.updated_at);
    link.appendChild(time);
    li.appendChild(link);
    enhanceItem(li);
    return li;
  }

  function renderHistory(items) {
    if (!dom.convList) return;
    closeMenu();
    dom.convList.replaceChildren(...items.map(historyItem));
    if (!items.length) {
      setHistoryStatus(history.mode === 'search' ? gettext('No conversation matches your search.')
        : history.mode === 'archived' ? gettext('No archived conversations.') : gettext('No conversations yet.'));
    } else {
      setHistoryStatus('');
    }
    setSidebarTitle();
  }

  async function loadHistory(url) {
    const number = ++history.request;
    if (dom.convList) dom.convList.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      if (number !== history.request) return;
      renderHistory(data.results || data.conversations || []);
    } catch (e) {
      if (number === history.request) showNotice(gettext('Could not load your conversations. Please try again.'), 'error');
    } finally {
      if (number === history.request && dom.convList) dom.convList.removeAttribute('aria-busy');
    }
  }

  function showList(mode) {
    history.mode = mode;
    const url = new URL(cfg.historyUrl || '/history/', window.location.href);
    if (mode === 'archived') url.searchParams.set('archived', '1');
    return loadHistory(url.pathname + url.search);
  }

  function runSearch() {
    const query = history.query;
    if (!query) {
      showList(history.previousMode || 'active');
      return;
    }
    if (history.mode !== 'search') history.previousMode = history.mode;
    history.mode = 'search';
    const url = new URL(cfg.historySearchUrl || '/history/search/', window.location.href);
    url.searchParams.set('q', query);
    loadHistory(url.pathname + url.search);
  }

  function onSearchInput(event) {
    const query = event.target.value.trim();
    if (query === history.query) return;
    history.query = query;
    clearTimeout(history.timer);
    history.timer = setTimeout(runSearch, query ? SEARCH_DEBOUNCE_MS : 0);
  }

  // Per-conversation menu
  function closeMenu() {
    if (!history.openMenu) return;
    const { menu, button } = history.openMenu;
    menu.remove();
    button.setAttribute('aria-expanded', 'false');
    history.openMenu = null;
  }

  function menuItem(label, action, danger) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'conv-menu-item' + (danger ? ' danger' : '');
    button.setAttribute('role', 'menuitem');
    button.dataset.action = action;
    button.textContent = label;
    return button;
  }

  function openMenu(li, button) {
    const wasOpen = history.openMenu && history.openMenu.button === button;
    closeMenu();
    if (wasOpen) return;
    const link = li.querySelector('.conv-link');
    const menu = document.createElement('div');
    menu.className = 'conv-menu';
    menu.setAttribute('role', 'menu');
    const archived = link.dataset.archived === 'true' || history.mode === 'archived';
    menu.append(
      menuItem(gettext('Rename'), 'rename'),
      archived ? menuItem(gettext('Unarchive'), 'unarchive') : menuItem(gettext('Archive'), 'archive'),
      menuItem(gettext('Delete'), 'delete', true),
    );
    menu.addEventListener('click', (event) => {
      const item = event.target.closest('[data-action]');
      if (!item) return;
      closeMenu();
      conversationAction(li, item.dataset.action);
    });
    li.appendChild(menu);
    button.setAttribute('aria-expanded', 'true');
    history.openMenu = { menu, button };
    const first = menu.querySelector('button');
    if (first) first.focus();
  }

  function enhanceItem(li) {
    const link = li.querySelector('.conv-link');
    if (!link || li.querySelector('.conv-menu-btn')) return;
    li.classList.add('conv-item');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'conv-menu-btn';
    button.setAttribute('aria-haspopup', 'menu');
    button.setAttribute('aria-expanded', 'false');
    const title = link.querySelector('.conv-title');
    button.setAttribute('aria-label', interpolate(gettext('Options for “%(title)s”'),
      { title: title ? title.textContent : '' }, true));
    button.textContent = '⋯';
    button.addEventListener('click', (event) => {
      event.preventDefault();
      event.stopPropagation();
      openMenu(li, button);
    });
    li.appendChild(button);
  }

  function removeItem(li) {
    li.remove();
    if (dom.convList && !dom.convList.querySelector('.conv-link')) {
      setHistoryStatus(history.mode === 'archived' ? gettext('No archived conversations.') : gettext('No conversations yet.'));
    }
  }

  function startRename(li) {
    const link = li.querySelector('.conv-link');
    const title = link.querySelector('.conv-title');
    const id = link.dataset.conversationId;
    const form = document.createElement('form');
    form.className = 'conv-rename';
    const input = document.createElement('input');
    input.type = 'text';
    input.className = 'conv-rename-input';
    input.maxLength = 200;
    input.required = true;
    input.value = title.textContent;
    input.setAttribute('aria-label', gettext('New title'));
    form.appendChild(input);
    link.hidden = true;
    const menuButton = li.querySelector('.conv-menu-btn');
    if (menuButton) menuButton.hidden = true;
    li.insertBefore(form, link);
    input.focus();
    input.select();
    let done = false;
    const finish = () => {
      done = true;
      form.remove();
      link.hidden = false;
      if (menuButton) menuButton.hidden = false;
    };
    const save = async () => {
      if (done) return;
      const value = input.value.trim();
      if (!value || value === title.textContent) {
        finish();
        return;
      }
      done = true;
      input.disabled = true;
      const data = await postAction(id, 'rename', { title: value });
      done = false;
      if (data && data.title) {
        title.textContent = data.title;
        if (menuButton) menuButton.setAttribute('aria-label', interpolate(gettext('Options for “%(title)s”'), { title: data.title }, true));
        if (id === state.conversationId) document.title = data.title + ' · Anyhour';
        finish();
      } else {
        input.disabled = false;
        input.focus();
      }
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      save();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        finish();
        link.focus();
      }
    });
    input.addEventListener('blur', () => {
      if (!done && !input.disabled) save();
    });
  }

  async function conversationAction(li, action) {
    const link = li.querySelector('.conv-link');
    if (!link) return;
    const id = link.dataset.conversationId;
    if (action === 'rename') {
      startRename(li);
    } else if (action === 'archive' || action === 'unarchive') {
      const data = await postAction(id, action);
      if (!data) return;
      if (history.mode === 'search') {
        link.dataset.archived = data.archived ? 'true' : 'false';
      } else {
        removeItem(li);
      }
      showNotice(data.archived ? gettext('Conversation archived.') : gettext('Conversation restored.'), 'info', 4000);
    } else if (action === 'delete') {
      // eslint-disable-next-line no-alert
      if (!window.confirm(gettext('Delete this conversation and all its messages? This cannot be undone.'))) return;
      const data = await postAction(id, 'delete');
      if (!data) return;
      if (id === state.conversationId) {
        abandonSocket();
        window.location.assign(data.redirect || '/');
        return;
      }
      removeItem(li);
      showNotice(gettext('Conversation deleted.'), 'info', 4000);
    }
  }

  function bindHistory() {
    if (!dom.convList) return;
    for (const li of dom.convList.querySelectorAll('li')) enhanceItem(li);
    const search = $('history-search');
    if (search) search.addEventListener('input', onSearchInput);
    const toggle = $('archived-toggle');
    if (toggle) {
      toggle.hidden = false;
      toggle.addEventListener('click', () => showList(history.mode === 'archived' ? 'active' : 'archived'));
    }
    document.addEventListener('click', (event) => {
      if (history.openMenu && !history.openMenu.menu.contains(event.target)) closeMenu();
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && history.openMenu) {
        const { button } = history.openMenu;
        closeMenu();
        button.focus();
      }
    });
  }

  // --- drawer (phones) ---------------------------------------------------------------------------
  function setDrawer(open) {
    document.body.classList.toggle('drawer-open', open);
    if (dom.menu) dom.menu.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (dom.backdrop) dom.backdrop.hidden = !open;
    if (open && dom.sidebar) {
      const first = dom.sidebar.querySelector('a, button');
      if (first) first.focus();
    }
  }

  // --- wiring ----------------------------------------------------------------------------------
  /** Hide the composer and the stop/regenerate buttons, and say why. */
  function enterReadOnly() {
    state.readOnly = true;
    if (dom.form) dom.form.hidden = true;
    if (dom.stop) dom.stop.hidden = true;
    if (dom.regenerate) dom.regenerate.hidden = true;
    if (!dom.readOnlyBar) {
      const bar = document.createElement('div');
      bar.id = 'read-only-notice';
      bar.className = 'read-only-bar';
      bar.setAttribute('role', 'note');
      bar.textContent = gettext("You are viewing this customer's conversation (read-only)");
      const anchor = dom.form || dom.notice;
      if (anchor) anchor.after(bar);
      dom.readOnlyBar = bar;
    }
    dom.readOnlyBar.hidden = false;
  }

  function bindComposer() {
    if (!dom.form || !dom.composer) return;
    dom.form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit();
    });
    dom.composer.addEventListener('compositionend', () => {
      state.compositionEndedAt = Date.now();
    });
    dom.composer.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' || event.shiftKey) return;
      // An IME (Chinese, Japanese…) uses Enter to confirm its candidate: never send then.
      if (event.isComposing || event.keyCode === 229) return;
      if (Date.now() - state.compositionEndedAt < 50) return; // Safari fires compositionend first
      if (event.altKey) return;
      event.preventDefault();
      submit();
    });
    dom.composer.addEventListener('input', onComposerInput);
    if (dom.stop) {
      dom.stop.addEventListener('click', () => {
        if (state.readOnly) return;
        if (!sendFrame({ type: 'stop' })) showNotice(gettext('You are offline. Please wait for the connection to come back.'), 'warning');
      });
    }
    if (dom.regenerate) {
      dom.regenerate.addEventListener('click', () => {
        if (state.readOnly) return;
        if (sendFrame({ type: 'regenerate' })) {
          state.awaitingRegenerate = true;
          updateControls();
        } else {
          showNotice(gettext('You are offline. Please wait for the connection to come back.'), 'warning');
        }
      });
    }
  }

  function bind() {
    if (!state.readOnly) bindComposer();
    dom.messages.addEventListener('scroll', () => {
      if (dom.jump && isNearBottom()) dom.jump.hidden = true;
    }, { passive: true });
    if (dom.jump) dom.jump.addEventListener('click', scrollToBottom);
    if (dom.notice) dom.notice.addEventListener('click', () => showNotice(''));
    if (dom.banner) {
      dom.banner.addEventListener('click', () => {
        dom.banner.dataset.expanded = dom.banner.dataset.expanded === 'true' ? 'false' : 'true';
      });
    }

    if (dom.menu) dom.menu.addEventListener('click', () => setDrawer(!document.body.classList.contains('drawer-open')));
    if (dom.backdrop) dom.backdrop.addEventListener('click', () => setDrawer(false));
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && document.body.classList.contains('drawer-open')) {
        setDrawer(false);
        if (dom.menu) dom.menu.focus();
      }
    });

    window.addEventListener('offline', () => {
      setConn('offline');
    });
    window.addEventListener('online', () => {
      if (state.ws && state.ws.readyState === WebSocket.OPEN) {
        setConn('connected');
        sendFrame({ type: 'ping' }); // a socket that died meanwhile is found by the dead-socket check
      } else if (state.conversationId && !state.blocked) {
        state.attempt = 0;
        connect();
      } else if (!state.conversationId) {
        setConn('connected');
      }
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      if (!state.ws && state.conversationId && !state.blocked && navigator.onLine !== false) {
        state.attempt = 0;
        connect();
      }
    });

    // The language switcher submits itself when JavaScript runs (its button stays for no-JS);
    // site/site.js usually got there first.
    const languageSelect = $('language-select');
    if (languageSelect && languageSelect.form && !languageSelect.dataset.bound) {
      languageSelect.dataset.bound = 'true';
      languageSelect.addEventListener('change', () => languageSelect.form.submit());
    }
  }

  function init() {
    if (!dom.messages) return;
    if (!state.readOnly && (!dom.composer || !dom.form)) return;
    document.documentElement.classList.add('js');
    if (state.readOnly) enterReadOnly();
    if (dom.composer && MAX_CHARS) dom.composer.maxLength = MAX_CHARS;

    if (widget) {
      state.widgetPending = true; // nothing is sent before the visitor's identity is known
      const restart = $('widget-new');
      if (restart) restart.addEventListener('click', () => widgetReset(false));
      resolveWidgetIdentity(() => {
        state.widgetPending = false;
        if (state.submitWhenReady) {
          state.submitWhenReady = false;
          setTimeout(submit, 0);
        }
        if (widgetIdentity.conversation && !state.conversationId) {
          // The transcript is replayed over the socket (resume from seq 1) once it opens.
          state.conversationId = widgetIdentity.conversation;
          connect();
        }
        updateControls();
      });
    }
    const initial = readJson('initial-messages', []);
    for (const raw of Array.isArray(initial) ? initial : []) {
      if (raw && typeof raw.seq === 'number') state.messages.set(raw.seq, normalise(raw));
    }
    if (!state.messages.size) showGreeting();
    const ordered = Array.from(state.messages.values()).sort((a, b) => a.seq - b.seq);
    for (const msg of ordered) renderMessage(msg);
    scrollToBottom();

    updateEngineBanner();
    bind();
    bindHistory();
    onComposerInput();
    if (state.conversationId) connect();
    else setConn(navigator.onLine === false ? 'offline' : 'connected');
    updateControls();
  }

  // Exposed for tests and debugging only; the page does not use it.
  window.AnyhourChat = Object.freeze({
    state,
    cpLength,
    dropCodePoints,
    renderMarkdown,
    resumePoint,
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
