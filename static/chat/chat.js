/*
 * The chat page (templates/chat/chat.html) and the website widget's frame
 * (templates/chat/widget.html): the customer's side of docs/protocol.md.
 *
 * This module wires the page together; the parts live next to it:
 *   shared/protocol-client.js  the websocket, the messages and the outbox (send, resume, backoff)
 *   chat/messages.js           the message list (#messages)
 *   chat/history.js            the sidebar of the customer's conversations (chat page only)
 *   widget/identity.js         who the visitor is inside the widget's frame (widget only)
 *   chat/texts.js              what the customer reads for each protocol code
 * It keeps the composer, the notices, the connection indicator and the buttons in step.
 *
 * Everything it needs from the server comes in the json_script blocks "chat-config" (URLs,
 * limits, the frames a read-only view must not send, the persona, the widget) and
 * "initial-messages". No framework, no build step: the page loads Django's JavaScript catalog
 * and the vendored marked and DOMPurify as classic scripts, then this file as a module.
 */
import { cpLength, firstCodePoints } from '../shared/codepoints.js';
import { gettext, interpolate } from '../shared/i18n.js';
import { csrfToken, readJson } from '../shared/page.js';
import { FINAL_STATUSES, FLOOD_PAUSE_MS, ProtocolClient, socketUrl } from '../shared/protocol-client.js';
import { WidgetIdentity } from '../widget/identity.js';
import { History } from './history.js';
import { MessageList } from './messages.js';
import { errorNotice } from './texts.js';

const cfg = readJson('chat-config', {});
const persona = cfg.persona || {};
const widget = cfg.widget && typeof cfg.widget === 'object' ? cfg.widget : null;
const MAX_CHARS = cfg.maxMessageChars;

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
  menu: $('menu-btn'),
  sidebar: $('sidebar'),
  backdrop: $('drawer-backdrop'),
  langNext: $('language-next'),
  loginLink: $('login-link'),
  readOnlyBar: $('read-only-notice'),
  handoffBar: $('handoff-bar'),
  handoffStatus: $('handoff-status'),
  handoffBtn: $('handoff-btn'),
  agentTyping: $('agent-typing'),
};

const state = {
  engine: cfg.engine || 'up',
  creating: false, // POST to create the conversation in flight
  awaitingRegenerate: false,
  noticeTimer: null,
  compositionEndedAt: 0,
  widgetPending: Boolean(widget), // nothing is sent before the widget visitor's identity is known
  submitWhenReady: false,
  handoff: { state: 'assistant', position: null, agent: null }, // docs/desk.md
  typingSentAt: 0,
  typingTimer: null,
};

const identity = widget ? new WidgetIdentity(widget) : null;

const client = new ProtocolClient({
  url: (id) => socketUrl(String(cfg.wsPathTemplate).replace('{id}', encodeURIComponent(id))),
  protocols: identity ? () => [widget.subprotocol, widget.tokenSubprotocolPrefix + identity.currentToken()] : null,
  conversationId: cfg.conversationId || null,
  // An agent or admin reading a customer's transcript: no composer, no stop/regenerate.
  readOnly: cfg.readOnly === true,
  writeFrames: cfg.writeFrames,
  handlers: {
    status: (kind) => (kind === 'reconnecting' ? setConn('connecting', gettext('Reconnecting…')) : setConn(kind)),
    opened: () => {
      labelPending();
      updateControls();
    },
    message: (msg, frame) => list.apply(msg, frame),
    refused: (entry, frame) => {
      list.dropPending(entry.clientId);
      restoreComposer(entry.text);
    },
    frame: onFrame,
    closed: onClose,
  },
});

const list = new MessageList({
  root: dom.messages,
  jump: $('jump-btn'),
  announcerRegion: $('answer-announcer'),
  persona,
  readOnly: () => client.readOnly,
  onRate: (seq, value, comment) => {
    if (!client.send({ type: 'rate', seq, value, comment })) offlineNotice();
  },
});

const sidebar = new History({
  config: cfg,
  notify: showNotice,
  currentId: () => client.conversationId,
  leave: (url) => {
    client.leave();
    window.location.assign(url);
  },
});

// --- notices and indicators ------------------------------------------------------------------

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

function notice(frame) {
  return errorNotice(frame, { maxChars: MAX_CHARS, persona });
}

function setConn(kind, text) {
  if (dom.conn) {
    const labels = {
      connecting: gettext('Connecting…'),
      connected: gettext('Online'),
      offline: gettext('Offline'),
    };
    dom.conn.dataset.state = kind;
    const label = dom.conn.querySelector('.conn-text') || dom.conn;
    label.textContent = text || labels[kind];
  }
  labelPending();
}

function labelPending() {
  list.labelPending(client.isOpen ? gettext('Sending…') : gettext('Waiting for connection…'));
}

function updateEngineBanner() {
  if (!dom.banner) return;
  const down = state.engine === 'none' || state.engine === 'down';
  const text = dom.banner.querySelector('.engine-banner-text') || dom.banner;
  text.textContent = persona.unavailableText || gettext('The assistant is unavailable right now');
  dom.banner.hidden = !down;
}

// --- frames in (the client has stored what they carry) ---------------------------------------

/** Where the customer stands (the `conversation` frame, and `ready`'s `state` after a reload). */
function showHandoff(s) {
  if (!s || typeof s.state !== 'string') return;
  state.handoff = s;
  if (!dom.handoffBar) return;
  dom.handoffBar.dataset.state = s.state;
  let text = '';
  if (s.state === 'waiting') {
    text = s.position
      ? interpolate(gettext('Waiting for an agent — you are number %(position)s in the queue.'), { position: s.position }, true)
      : gettext('Waiting for an agent…');
  } else if (s.state === 'with_agent') {
    text = s.agent
      ? interpolate(gettext('%(name)s has joined the conversation.'), { name: s.agent }, true)
      : gettext('An agent has joined the conversation.');
  } else if (s.state === 'resolved') {
    text = gettext('This conversation was resolved. Write again to continue.');
  }
  dom.handoffStatus.textContent = text;
  if (s.state !== 'with_agent' && dom.agentTyping) dom.agentTyping.hidden = true;
  const ask = $('satisfaction');
  if (ask) {
    // Once resolved: "How satisfied are you?" 1–5, then thanks.
    ask.hidden = s.state !== 'resolved' || client.readOnly;
    ask.dataset.given = s.satisfaction ? 'true' : 'false';
    ask.querySelectorAll('button[data-score]').forEach((b) => {
      b.setAttribute('aria-pressed', String(Number(b.dataset.score) === s.satisfaction));
    });
  }
}

function onTyping(frame) {
  if (frame.role !== 'agent' || !dom.agentTyping) return;
  dom.agentTyping.hidden = false;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => { dom.agentTyping.hidden = true; }, 4000);
}

function onFrame(frame) {
  switch (frame.type) {
    case 'ready':
      if (typeof frame.engine === 'string') {
        state.engine = frame.engine;
        updateEngineBanner();
      }
      showHandoff(frame.state);
      break;
    case 'conversation':
      showHandoff(frame);
      break;
    case 'typing':
      onTyping(frame);
      break;
    case 'start':
      state.awaitingRegenerate = false;
      break;
    case 'error':
      onError(frame);
      break;
    default:
      break;
  }
  updateControls();
}

function onError(frame) {
  const code = frame.code;
  if (code === 'forbidden') {
    // The server refuses writes from this view (the client is read-only from now on).
    list.dropAllPending();
    state.awaitingRegenerate = false;
    enterReadOnly();
    showNotice(notice(frame), 'warning', 0);
    return;
  }
  if (code === 'busy' || code === 'nothing_to_regenerate') state.awaitingRegenerate = false;
  const text = notice(frame);
  if (text) {
    const seconds = Number(frame.retry_after) || 0;
    showNotice(text, code === 'busy' || code === 'rate_limited' ? 'warning' : 'error', Math.max(8000, seconds * 1000));
  }
}

function onClose(code) {
  state.awaitingRegenerate = false;
  updateControls();
  labelPending();
  if (identity && (code === 4403 || code === 4401)) {
    // The stored conversation is gone (4403) or the visitor token expired (4401): start over.
    setConn('offline');
    showNotice(gettext('This conversation has ended. Starting a new one…'), 'warning', 0);
    setTimeout(() => identity.reset(code === 4401), 1500);
  } else if (code === 4403) {
    setConn('offline', gettext('Not available'));
    showNotice(gettext('This conversation is not available.'), 'error', 0);
    updateControls();
  } else if (code === 4401) {
    setConn('offline');
    showNotice(gettext('Your session has ended. Reloading…'), 'error', 0);
    setTimeout(() => window.location.reload(), 1500);
  } else if (code === 4429) {
    showNotice(gettext('Too many requests. Reconnecting in a few seconds…'), 'warning', FLOOD_PAUSE_MS);
  }
}

// --- controls --------------------------------------------------------------------------------

function updateControls() {
  if (client.readOnly || !dom.send) return;
  const streaming = client.streaming();
  const pending = client.outbox.length > 0;
  dom.send.disabled = streaming || pending || client.blocked || state.creating || state.widgetPending;
  dom.send.classList.toggle('is-empty', !dom.composer.value.trim());
  dom.stop.hidden = !streaming;
  const last = client.lastMessage();
  dom.regenerate.hidden = !(
    last && last.role === 'assistant' && FINAL_STATUSES.has(last.status) && !streaming
    && !pending && !client.blocked && !state.awaitingRegenerate && client.conversationId
  );
  dom.regenerate.disabled = !client.isOpen;
  dom.stop.disabled = !client.isOpen;
  if (dom.handoffBtn) {
    // The same handoff the assistant offers when it cannot answer (docs/desk.md).
    const human = state.handoff.state === 'waiting' || state.handoff.state === 'with_agent';
    dom.handoffBtn.hidden = human || !client.conversationId;
    dom.handoffBtn.disabled = !client.isOpen;
    if (human) dom.regenerate.hidden = true;
  }
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

function restoreComposer(text) {
  if (client.readOnly || !dom.composer) return;
  const current = dom.composer.value;
  if (!current.trim()) dom.composer.value = text;
  else if (current !== text && !current.startsWith(text)) dom.composer.value = text + '\n' + current;
  onComposerInput();
  dom.composer.focus();
}

// --- sending ---------------------------------------------------------------------------------

/** The title the server gives a new conversation: its first message, whitespace folded, cut. */
function conversationTitle(text) {
  return firstCodePoints(text.split(/\s+/).filter(Boolean).join(' '), cfg.titleLength);
}

/** The Export menu exists (hidden) on a new-conversation page: point it at the new id and show it. */
function showExportMenu(id) {
  const menu = $('export-menu');
  if (!menu) return;
  menu.querySelectorAll('a[data-export-template]').forEach((link) => {
    link.href = link.dataset.exportTemplate.replace('__id__', encodeURIComponent(id));
  });
  menu.hidden = false;
}

/** The page's conversation now exists as ``id``: give the page its URL, links and sidebar item. */
function adoptConversation(id, url, text) {
  try {
    window.history.replaceState({ conversationId: id }, '', url);
  } catch (e) { /* very old browsers */ }
  if (dom.langNext) dom.langNext.value = url;
  if (dom.loginLink) {
    // "Log in" brings a guest back to this conversation (it becomes theirs at login).
    const login = new URL(dom.loginLink.href, window.location.href);
    login.searchParams.set('next', url);
    dom.loginLink.href = login.pathname + login.search;
  }
  showExportMenu(id);
  sidebar.add(id, url, conversationTitle(text));
  document.title = conversationTitle(text) + ' · Anyhour';
}

/** POST the new conversation; its id, or null (the customer has been told why). */
async function createConversation() {
  let response;
  try {
    const headers = { Accept: 'application/json' };
    if (identity) headers[widget.tokenHeader] = identity.currentToken(); // no cookies, no CSRF token
    else headers['X-CSRFToken'] = csrfToken();
    response = await fetch(cfg.newConversationUrl, {
      method: 'POST',
      credentials: identity ? 'omit' : 'same-origin',
      headers,
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
  if (response.status === 429) {
    const retry = data && data.error ? data.error.retry_after : 60;
    showNotice(notice({ code: 'rate_limited', retry_after: retry }), 'warning');
    return null;
  }
  if (identity && response.status === 401) {
    identity.reset(true); // the visitor token expired: a new visitor
    return null;
  }
  if (!response.ok || !data || !data.id) {
    showNotice(gettext('Could not start a conversation. Please reload the page and try again.'), 'error');
    return null;
  }
  return data;
}

async function submit() {
  if (client.readOnly) return;
  if (state.widgetPending) {
    state.submitWhenReady = true; // sent as soon as the visitor's identity is known
    return;
  }
  const text = dom.composer.value.trim();
  if (!text) return;
  if (cpLength(text) > MAX_CHARS) {
    showNotice(notice({ code: 'too_long' }), 'error');
    return;
  }
  if (client.streaming()) {
    showNotice(notice({ code: 'busy' }), 'warning');
    return;
  }
  if (dom.send.disabled || client.blocked) return;
  dom.composer.value = '';
  onComposerInput();
  showNotice('');
  const entry = client.post(text); // sent once a socket is open on the conversation
  list.addPending(entry.clientId, text);
  labelPending();
  updateControls();
  if (client.conversationId) return;
  state.creating = true;
  updateControls();
  const data = await createConversation();
  state.creating = false;
  if (!data) {
    client.withdraw(entry);
    list.dropPending(entry.clientId);
    restoreComposer(text);
    updateControls();
    return;
  }
  if (identity) {
    // The frame keeps its URL; the conversation is remembered for the next page the visitor
    // opens on the company's site.
    identity.save({ conversation: data.id });
  } else {
    const url = data.url || String(cfg.conversationUrlTemplate).replace('{id}', data.id);
    adoptConversation(data.id, url, text);
  }
  client.open(data.id);
  updateControls();
}

// --- wiring ----------------------------------------------------------------------------------

function setDrawer(open) {
  document.body.classList.toggle('drawer-open', open);
  if (dom.menu) dom.menu.setAttribute('aria-expanded', open ? 'true' : 'false');
  if (dom.backdrop) dom.backdrop.hidden = !open;
  if (open && dom.sidebar) {
    const first = dom.sidebar.querySelector('a, button');
    if (first) first.focus();
  }
}

/** Hide the composer and the stop/regenerate buttons, and say why. */
function enterReadOnly() {
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

function offlineNotice() {
  showNotice(gettext('You are offline. Please wait for the connection to come back.'), 'warning');
}

function bindComposer() {
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
  dom.composer.addEventListener('input', sendTyping);
  const ask = $('satisfaction');
  if (ask) {
    ask.querySelectorAll('button[data-score]').forEach((b) => {
      b.addEventListener('click', () => {
        if (!client.send({ type: 'satisfaction', score: Number(b.dataset.score) })) offlineNotice();
      });
    });
  }
  if (dom.handoffBtn) {
    dom.handoffBtn.addEventListener('click', () => {
      if (!client.send({ type: 'handoff' })) offlineNotice();
    });
  }
  dom.stop.addEventListener('click', () => {
    if (client.readOnly) return;
    if (!client.send({ type: 'stop' })) offlineNotice();
  });
  dom.regenerate.addEventListener('click', () => {
    if (client.readOnly) return;
    if (client.send({ type: 'regenerate' })) {
      state.awaitingRegenerate = true;
      updateControls();
    } else {
      offlineNotice();
    }
  });
}

/** Tell the agent the customer is typing (only while an agent has the conversation; the server
 * relays at most one per CHAT_TYPING_INTERVAL, so once every two seconds is plenty). */
function sendTyping() {
  if (state.handoff.state !== 'with_agent') return;
  const now = Date.now();
  if (now - state.typingSentAt < 2000) return;
  if (client.send({ type: 'typing' })) state.typingSentAt = now;
}

function bind() {
  if (!client.readOnly) bindComposer();
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
}

/** In the widget: learn who the visitor is, then send what waited and reopen their conversation. */
function startWidget() {
  const restart = $('widget-new');
  if (restart) restart.addEventListener('click', () => identity.reset(false));
  identity.resolve(() => {
    state.widgetPending = false;
    if (state.submitWhenReady) {
      state.submitWhenReady = false;
      setTimeout(submit, 0);
    }
    if (identity.conversation && !client.conversationId) {
      // The transcript is replayed over the socket (resume from seq 1) once it opens.
      client.open(identity.conversation);
    }
    updateControls();
  });
}

function init() {
  document.documentElement.classList.add('js'); // the widget's frame has no site.js to do it
  if (client.readOnly) enterReadOnly();
  if (dom.composer) dom.composer.maxLength = MAX_CHARS;
  if (identity) startWidget();
  client.seed(readJson('initial-messages', []));
  if (!client.messages.size) list.showGreeting();
  const ordered = Array.from(client.messages.values()).sort((a, b) => a.seq - b.seq);
  for (const msg of ordered) list.draw(msg);
  list.scrollToBottom();
  updateEngineBanner();
  bind();
  onComposerInput();
  if (client.conversationId) client.connect();
  else setConn(navigator.onLine === false ? 'offline' : 'connected');
  updateControls();
}

init();
