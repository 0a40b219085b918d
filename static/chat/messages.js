/*
 * The message list of the chat page and the widget's frame (#messages): one bubble per message,
 * in seq order, drawn from the messages a ProtocolClient keeps; the bubbles of posted messages
 * the server has not acknowledged yet ("pending") stay at the end until it does.
 *
 * Answers are Markdown (shared/markdown.js). Deltas are drawn at most once per animation frame;
 * the list follows the bottom only if the reader was already there (otherwise "New messages"
 * shows). For screen readers the list is not a live region: a streaming answer is aria-busy, and
 * its finished text is announced once when it ends (shared/announcer.js).
 */
import { announcer, setBusy } from '../shared/announcer.js';
import { gettext, timeLabel } from '../shared/i18n.js';
import { renderMarkdown } from '../shared/markdown.js';
import { FINAL_STATUSES } from '../shared/protocol-client.js';
import { failureText } from './texts.js';

const NEAR_BOTTOM_PX = 96;

export class MessageList {
  /**
   * @param {object} options
   * @param {HTMLElement} options.root  the #messages element
   * @param {HTMLElement|null} options.jump  the "New messages" button
   * @param {HTMLElement|null} options.announcerRegion  the live region for finished answers
   * @param {object} options.persona  name, greeting, unavailableText (page config)
   * @param {() => boolean} options.readOnly  whether a staff member is reading (not the customer)
   * @param {(seq: number, value: string|null, comment: string) => void} [options.onRate]  the
   *   customer rated answer ``seq`` ('up', 'down', or null to clear); without it no rating controls
   */
  constructor({ root, jump, announcerRegion, persona, readOnly, onRate = null }) {
    this.root = root;
    this.onRate = onRate;
    this.jump = jump;
    this.announce = announcer(announcerRegion);
    this.persona = persona;
    this.readOnly = readOnly;
    this.elements = new Map(); // seq -> element
    this.pending = new Map(); // clientId -> element
    this.dirty = new Map(); // seq -> message, drawn at the next animation frame
    this.frameRequested = false;
    root.addEventListener('scroll', () => {
      if (this.jump && this.isNearBottom()) this.jump.hidden = true;
    }, { passive: true });
    if (jump) jump.addEventListener('click', () => this.scrollToBottom());
  }

  // --- scrolling -----------------------------------------------------------------------------

  isNearBottom() {
    const el = this.root;
    return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.root.scrollTop = this.root.scrollHeight;
    if (this.jump) this.jump.hidden = true;
  }

  /** Run a DOM change; follow the bottom only if the reader was already there. */
  keepingScroll(change, force) {
    const stick = force || this.isNearBottom();
    change();
    if (stick) this.scrollToBottom();
    else if (this.jump) this.jump.hidden = false;
  }

  // --- drawing -------------------------------------------------------------------------------

  /** Show what a message frame changed: a delta at the next animation frame, anything else now
   * (resolving the pending bubble its ``client_id`` names). The protocol client's ``message``
   * handler on every page that shows a conversation. */
  apply(msg, frame) {
    if (frame.type === 'delta') {
      this.schedule(msg);
      return;
    }
    const clientId = frame.client_id || msg.client_id;
    if (clientId) this.resolvePending(clientId, msg.seq);
    this.render(msg);
  }

  /** Draw ``msg`` now (a whole message, or the start or end of an answer). */
  render(msg) {
    this.dirty.delete(msg.seq);
    this.keepingScroll(() => this.draw(msg));
  }

  /** Draw ``msg`` at the next animation frame (deltas arrive faster than the screen refreshes). */
  schedule(msg) {
    this.dirty.set(msg.seq, msg);
    if (this.frameRequested) return;
    this.frameRequested = true;
    window.requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frameRequested = false;
    if (!this.dirty.size) return;
    const messages = Array.from(this.dirty.values());
    this.dirty.clear();
    this.keepingScroll(() => {
      for (const msg of messages) this.draw(msg);
    });
  }

  whoLabel(role, author) {
    switch (role) {
      // A read-only reader (an agent or admin) is not the customer who wrote these.
      case 'user': return this.readOnly() ? gettext('Customer') : gettext('You');
      // An agent's display name (docs/desk.md), when their account has one.
      case 'agent': return author || gettext('Support agent');
      case 'system': return gettext('System');
      default: return this.persona.name || gettext('Assistant');
    }
  }

  draw(msg) {
    let el = this.elements.get(msg.seq);
    if (!el) {
      el = createShell();
      this.insertBySeq(el, msg.seq);
      this.elements.set(msg.seq, el);
    }
    el.dataset.seq = String(msg.seq);
    el.dataset.role = msg.role;
    el.dataset.status = msg.status;
    delete el.dataset.pending;
    if (msg.client_id) el.dataset.clientId = msg.client_id;
    if (msg.error_code) el.dataset.errorCode = msg.error_code;
    else delete el.dataset.errorCode;
    renderContent(el, msg);
    this.setMeta(el, msg);
    setSources(el, msg);
    if (msg.status === 'failed') {
      setNote(el, failureText(msg.error_code, this.persona), msg.error_code === 'engine_unavailable' ? 'unavailable' : 'error');
    } else if (msg.status === 'interrupted') {
      setNote(el, failureText('interrupted', this.persona), 'warning');
    } else {
      setNote(el, '');
    }
    setSuperseded(el, Boolean(msg.superseded));
    this.setRating(el, msg);
    if (setBusy(el, msg.status === 'streaming')) this.announceFinished(el, msg);
  }

  /** Thumbs up/down under a finished answer (the customer's view only), then an optional comment. */
  setRating(el, msg) {
    let box = el.querySelector(':scope > .rating');
    const rateable = this.onRate && !this.readOnly() && msg.role === 'assistant' && FINAL_STATUSES.has(msg.status);
    if (!rateable) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = this.ratingBox(msg.seq);
      el.appendChild(box);
    }
    box.querySelector('[data-value=up]').setAttribute('aria-pressed', String(msg.rating === 1));
    box.querySelector('[data-value=down]').setAttribute('aria-pressed', String(msg.rating === -1));
  }

  ratingBox(seq) {
    const box = document.createElement('div');
    box.className = 'rating';
    const form = document.createElement('form');
    form.className = 'rating-comment';
    form.hidden = true;
    const input = document.createElement('input');
    input.type = 'text';
    input.maxLength = 1000;
    input.placeholder = gettext('Tell us more (optional)');
    input.setAttribute('aria-label', gettext('Tell us more (optional)'));
    const send = document.createElement('button');
    send.type = 'submit';
    send.className = 'btn btn-ghost';
    send.textContent = gettext('Send');
    form.append(input, send);
    for (const [value, symbol, label] of [['up', '👍', gettext('Helpful')], ['down', '👎', gettext('Not helpful')]]) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'rating-btn';
      button.dataset.value = value;
      button.textContent = symbol;
      button.title = label;
      button.setAttribute('aria-label', label);
      button.addEventListener('click', () => {
        const next = button.getAttribute('aria-pressed') === 'true' ? null : value;
        box.dataset.value = next || '';
        this.onRate(seq, next, '');
        form.hidden = !next;
        if (next) input.focus();
      });
      box.appendChild(button);
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (box.dataset.value) this.onRate(seq, box.dataset.value, input.value.trim());
      form.hidden = true;
    });
    box.appendChild(form);
    return box;
  }

  /** The whole answer, once, when it stops streaming (its note too if it failed). */
  announceFinished(el, msg) {
    const parts = [this.whoLabel(msg.role, msg.author)];
    for (const selector of [':scope > .content', ':scope > .note', ':scope > .meta .status-label']) {
      const part = el.querySelector(selector);
      if (part && part.textContent.trim()) parts.push(part.textContent.trim());
    }
    this.announce(parts.join('\n'));
  }

  setMeta(el, msg) {
    const meta = el.querySelector(':scope > .meta');
    meta.textContent = '';
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = this.whoLabel(msg.role, msg.author);
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

  insertBySeq(el, seq) {
    for (const other of this.root.children) {
      if (other.dataset.seq && Number(other.dataset.seq) > seq) {
        this.root.insertBefore(el, other);
        return;
      }
      if (other.dataset.pending === 'true') {
        this.root.insertBefore(el, other);
        return;
      }
    }
    this.root.appendChild(el);
  }

  /** The persona's greeting, first in an empty conversation (not a message: never stored). */
  showGreeting() {
    if (!this.persona.greeting || document.getElementById('greeting')) return;
    const el = createShell();
    el.id = 'greeting';
    el.classList.add('msg-greeting');
    el.dataset.role = 'assistant';
    el.dataset.greeting = 'true';
    el.querySelector('.content').innerHTML = renderMarkdown(this.persona.greeting);
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = this.whoLabel('assistant');
    el.querySelector('.meta').appendChild(who);
    this.root.prepend(el);
  }

  // --- pending (posted, not yet acknowledged) messages ---------------------------------------

  addPending(clientId, text, role = 'user') {
    const el = createShell();
    el.dataset.role = role;
    el.dataset.status = 'pending';
    el.dataset.pending = 'true';
    el.dataset.clientId = clientId;
    el.querySelector('.content').textContent = text;
    this.pending.set(clientId, el);
    this.keepingScroll(() => this.root.appendChild(el), true);
  }

  /** Label every pending bubble ("Sending…", "Waiting for connection…"). */
  labelPending(text) {
    for (const el of this.pending.values()) {
      const meta = el.querySelector('.meta');
      meta.textContent = '';
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = this.whoLabel('user');
      const label = document.createElement('span');
      label.className = 'status-label';
      label.textContent = text;
      meta.append(who, label);
    }
  }

  dropPending(clientId) {
    const el = this.pending.get(clientId);
    if (!el) return;
    this.pending.delete(clientId);
    el.remove();
  }

  dropAllPending() {
    for (const clientId of Array.from(this.pending.keys())) this.dropPending(clientId);
  }

  /** The server has the message: its pending bubble becomes the bubble of ``seq``. */
  resolvePending(clientId, seq) {
    const el = this.pending.get(clientId);
    if (!el) return;
    this.pending.delete(clientId);
    el.remove();
    if (!this.elements.has(seq)) {
      delete el.dataset.pending;
      el.dataset.seq = String(seq);
      this.insertBySeq(el, seq);
      this.elements.set(seq, el);
    }
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

/** The blinking cursor at the end of the text so far, inside its last block (not under it). */
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

/** The knowledge articles an answer used, as links under it (docs/knowledge.md). */
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
