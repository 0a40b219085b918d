/*
 * The browser's one client of docs/protocol.md: the chat page, the website widget's frame and
 * the persona preview console all talk to the server through a ProtocolClient.
 *
 * A client owns one conversation's websocket and the page's copy of that conversation:
 * - messages: seq -> message, replaced by message/ack/start/end frames and grown by deltas
 *   (offsets count code points); a delta beyond what we have asks the server to resume there;
 * - the outbox: messages posted and not yet acknowledged, sent again with the same client_id on
 *   every new socket, so that a reconnect neither loses nor doubles one;
 * - the connection: on every open it resumes from the first unfinished message, then sends the
 *   outbox; it pings, gives up on a silent socket, reconnects with exponential backoff, stops
 *   for good on 4401/4403, pauses on 4429, and follows the browser's online, offline and
 *   visibility events.
 * The page draws; the client tells it what happened through the handlers it is given:
 *   status(kind)           'connecting' | 'reconnecting' | 'connected' | 'offline'
 *                          ('connected' also means online with no conversation to connect to yet)
 *   opened()               a socket opened; resume and outbox are sent
 *   message(msg, frame)    the stored ``msg`` changed by ``frame`` (message, ack, start, delta,
 *                          end); ``frame.client_id || msg.client_id`` names the posted message a
 *                          message or ack frame acknowledges (it has left the outbox)
 *   refused(entry, frame)  the server refused a posted message; ``entry`` has left the outbox
 *   frame(frame)           every frame, after the client has taken what it needs from it
 *   closed(code)           the socket closed; it reconnects by itself unless ``client.blocked``
 * Only page-independent protocol rules live here; which texts to show, and when, is the page's.
 */
import { cpLength, dropCodePoints } from './codepoints.js';

const PING_INTERVAL_MS = 25000;
const DEAD_SOCKET_MS = 65000; // nothing received for this long (pongs included): reconnect
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10000;
export const FLOOD_PAUSE_MS = 10000; // after a 4429 close
// too_long and empty (and a flood refusal) carry no client_id: they answer the latest send.
const UNNAMED_REFUSAL_MS = 10000;
// Errors that refuse one posted message (its text goes back to the composer).
const REFUSALS = new Set(['too_long', 'rate_limited', 'busy', 'empty']);

export const FINAL_STATUSES = new Set(['complete', 'stopped', 'failed', 'interrupted']);

/** The absolute websocket URL of a same-site ``path`` ("/ws/chat/<id>/"). */
export function socketUrl(path) {
  return (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + path;
}

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

/** A message as the server describes it (docs/protocol.md, `Msg`), with defaults and its length. */
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
    author: typeof raw.author === 'string' ? raw.author : null,
    rating: raw.rating === 1 || raw.rating === -1 ? raw.rating : null,
  };
}

export class ProtocolClient {
  /**
   * @param {object} options
   * @param {(id: string) => string} options.url  the websocket URL of a conversation
   * @param {() => string[]} [options.protocols]  subprotocols to offer (the widget's token)
   * @param {string|null} [options.conversationId]  the conversation, if it exists already
   * @param {boolean} [options.readOnly]  a staff reader's view: never sends `writeFrames`
   * @param {string[]} [options.writeFrames]  the frames only the customer may send (page config)
   * @param {object} [options.handlers]  see the top of this file
   */
  constructor({ url, protocols = null, conversationId = null, readOnly = false, writeFrames = [], handlers = {} }) {
    this.url = url;
    this.protocols = protocols;
    this.conversationId = conversationId;
    this.readOnly = readOnly;
    this.writeFrames = new Set(writeFrames);
    this.handlers = handlers;
    this.messages = new Map(); // seq -> message
    this.outbox = []; // {clientId, text, sentOn, sentAt}
    this.blocked = false; // closed with 4401/4403: never reconnect
    this.ws = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.lastReceived = 0;
    this.lastResume = null; // {seq, offset} of the last gap-driven resume, to send it once
    this.followBrowser();
  }

  emit(name, ...args) {
    const handler = this.handlers[name];
    if (handler) handler(...args);
  }

  // --- the conversation --------------------------------------------------------------------

  /** Messages the page already has (rendered by the server), so the socket resumes after them. */
  seed(raws) {
    for (const raw of Array.isArray(raws) ? raws : []) {
      if (raw && typeof raw.seq === 'number') this.messages.set(raw.seq, normalise(raw));
    }
  }

  /** Talk about conversation ``id`` (it was just created, or found): connect to it. */
  open(id) {
    this.conversationId = id;
    this.connect();
  }

  /** Stop talking about the conversation: close its socket, forget its messages and outbox. */
  leave() {
    this.abandon();
    clearTimeout(this.reconnectTimer);
    this.conversationId = null;
    this.messages.clear();
    this.outbox = [];
    this.lastResume = null;
    this.attempt = 0;
    this.blocked = false;
  }

  get isOpen() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  streaming() {
    for (const msg of this.messages.values()) if (msg.status === 'streaming') return true;
    return false;
  }

  /** The latest message that is not a system note. */
  lastMessage() {
    let last = null;
    for (const msg of this.messages.values()) {
      if (msg.role === 'system') continue;
      if (!last || msg.seq > last.seq) last = msg;
    }
    return last;
  }

  /** Where to resume: the first answer still streaming, or after the last message we have. */
  resumePoint() {
    let earliest = null;
    let last = 0;
    for (const msg of this.messages.values()) {
      if (msg.seq > last) last = msg.seq;
      if (msg.status === 'streaming' && (earliest === null || msg.seq < earliest.seq)) earliest = msg;
    }
    if (earliest) return { seq: earliest.seq, offset: earliest.cpLen };
    return { seq: last + 1, offset: 0 };
  }

  // --- frames out --------------------------------------------------------------------------

  /** Send ``frame`` now; false when it cannot go (no open socket, or a write in a read-only view). */
  send(frame) {
    if (this.readOnly && this.writeFrames.has(frame.type)) return false;
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }

  /** Post a user message: sent now if the socket is open, otherwise as soon as one is. */
  post(text) {
    const entry = { clientId: newClientId(), text, sentOn: null, sentAt: 0 };
    this.outbox.push(entry);
    if (this.isOpen) this.flush();
    else this.connect();
    return entry;
  }

  /** Take a posted message back (its conversation could not be created). */
  withdraw(entry) {
    this.outbox = this.outbox.filter((e) => e !== entry);
  }

  flush() {
    const ws = this.ws;
    if (!this.isOpen) return;
    for (const entry of this.outbox) {
      if (entry.sentOn === ws) continue;
      if (this.send({ type: 'send', text: entry.text, client_id: entry.clientId })) {
        entry.sentOn = ws;
        entry.sentAt = Date.now();
      }
    }
  }

  requestResume(seq, offset) {
    const last = this.lastResume;
    if (last && last.seq === seq && last.offset === offset) return;
    if (this.send({ type: 'resume', seq, offset })) this.lastResume = { seq, offset };
  }

  // --- frames in ---------------------------------------------------------------------------

  receive(frame) {
    switch (frame.type) {
      case 'ready':
        this.attempt = 0;
        break;
      case 'ack':
        this.acknowledged(frame.client_id);
        this.upsertWhole(frame.message, frame);
        break;
      case 'message':
        this.acknowledged(frame.message && frame.message.client_id);
        this.upsertWhole(frame.message, frame);
        break;
      case 'start':
        this.upsertStart(frame.message, frame);
        break;
      case 'delta':
        this.applyDelta(frame);
        break;
      case 'end':
        this.upsertWhole(frame.message, frame);
        break;
      case 'error':
        this.refusal(frame);
        break;
      default:
        break;
    }
    this.emit('frame', frame);
  }

  acknowledged(clientId) {
    if (clientId) this.outbox = this.outbox.filter((e) => e.clientId !== clientId);
  }

  /** `message`, `ack` and `end`: the frame is authoritative (content replaced). */
  upsertWhole(raw, frame) {
    if (!raw || typeof raw.seq !== 'number') return;
    const msg = normalise(raw);
    this.messages.set(msg.seq, msg);
    if (this.lastResume && this.lastResume.seq === msg.seq) this.lastResume = null;
    this.emit('message', msg, frame);
  }

  /** `start`: an answer starts or is being resumed; keep what we already have of it. */
  upsertStart(raw, frame) {
    if (!raw || typeof raw.seq !== 'number') return;
    const incoming = normalise(raw);
    incoming.status = 'streaming';
    const current = this.messages.get(incoming.seq);
    if (current && FINAL_STATUSES.has(current.status)) return; // a late replay of a finished answer
    if (current && current.cpLen > incoming.cpLen) {
      incoming.content = current.content;
      incoming.cpLen = current.cpLen;
    }
    this.messages.set(incoming.seq, incoming);
    this.emit('message', incoming, frame);
  }

  applyDelta(frame) {
    const { seq, offset } = frame;
    const text = typeof frame.text === 'string' ? frame.text : '';
    if (typeof seq !== 'number' || typeof offset !== 'number') return;
    let msg = this.messages.get(seq);
    if (!msg) {
      if (offset !== 0) {
        this.requestResume(seq, 0);
        return;
      }
      msg = normalise({ seq, role: 'assistant', content: '', status: 'streaming' });
      this.messages.set(seq, msg);
    }
    if (msg.status !== 'streaming') return;
    const have = msg.cpLen;
    if (offset > have) {
      this.requestResume(seq, have);
      return;
    }
    const tail = offset < have ? dropCodePoints(text, have - offset) : text;
    if (!tail) return;
    msg.content += tail;
    msg.cpLen += cpLength(tail);
    this.lastResume = null;
    this.emit('message', msg, frame);
  }

  refusal(frame) {
    const code = frame.code;
    if (code === 'forbidden') {
      // The server refuses writes from this view: from now on it is read-only.
      this.readOnly = true;
      this.outbox = [];
      return;
    }
    if (!REFUSALS.has(code)) return;
    let entry = frame.client_id ? this.outbox.find((e) => e.clientId === frame.client_id) : null;
    if (!entry && !frame.client_id && code !== 'busy' && this.outbox.length) {
      const last = this.outbox[this.outbox.length - 1];
      if (last.sentOn && Date.now() - last.sentAt < UNNAMED_REFUSAL_MS) entry = last;
    }
    if (entry) {
      this.withdraw(entry);
      this.emit('refused', entry, frame);
    }
  }

  // --- the connection ----------------------------------------------------------------------

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (!this.conversationId || this.blocked) return;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    if (navigator.onLine === false) {
      this.emit('status', 'offline');
      return;
    }
    this.emit('status', 'connecting');
    let ws;
    try {
      const url = this.url(this.conversationId);
      ws = this.protocols ? new WebSocket(url, this.protocols()) : new WebSocket(url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.lastReceived = Date.now();
      this.lastResume = null;
      this.emit('status', navigator.onLine === false ? 'offline' : 'connected');
      const point = this.resumePoint();
      this.send({ type: 'resume', seq: point.seq, offset: point.offset });
      this.flush();
      this.startPing();
      this.emit('opened');
    });
    ws.addEventListener('message', (event) => {
      if (this.ws !== ws) return;
      this.lastReceived = Date.now();
      if (typeof event.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame === 'object') this.receive(frame);
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopPing();
      if (event.code === 4401 || event.code === 4403) this.blocked = true;
      this.emit('closed', event.code);
      this.scheduleReconnect(event.code === 4429 ? FLOOD_PAUSE_MS : undefined);
    });
  }

  /** Forget the socket without waiting for its close event (a dead one may take minutes to close). */
  abandon() {
    const ws = this.ws;
    this.ws = null;
    this.stopPing();
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) { /* already closed */ }
    }
  }

  scheduleReconnect(delayMs) {
    clearTimeout(this.reconnectTimer);
    if (this.blocked || !this.conversationId) return;
    if (navigator.onLine === false) {
      this.emit('status', 'offline');
      return; // the "online" event reconnects
    }
    let delay = delayMs;
    if (delay === undefined) {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
      delay = base / 2 + Math.random() * (base / 2); // "equal jitter"
      this.attempt += 1;
    }
    this.emit('status', 'reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastReceived > DEAD_SOCKET_MS) {
        this.abandon();
        this.scheduleReconnect(0);
        return;
      }
      this.send({ type: 'ping' });
    }, PING_INTERVAL_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  followBrowser() {
    window.addEventListener('offline', () => this.emit('status', 'offline'));
    window.addEventListener('online', () => {
      if (this.isOpen) {
        this.emit('status', 'connected');
        this.send({ type: 'ping' }); // a socket that died meanwhile is found by the dead-socket check
      } else if (this.conversationId && !this.blocked) {
        this.attempt = 0;
        this.connect();
      } else if (!this.conversationId) {
        this.emit('status', 'connected');
      }
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      if (!this.ws && this.conversationId && !this.blocked && navigator.onLine !== false) {
        this.attempt = 0;
        this.connect();
      }
    });
  }
}
