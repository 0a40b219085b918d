/*
 * A conversation on the agent desk (templates/desk/conversation.html): the chat socket of the
 * conversation through the shared protocol client (resume, outbox, reconnect), drawn by the
 * chat's message list (same Markdown sanitiser). While the agent holds the conversation, the
 * composer posts `send` frames, which the server saves as the agent's replies, and typing sends
 * `typing` frames (at most one per the server's interval). `conversation` frames update the
 * state badge; the customer's `typing` frames show a short indicator.
 */
import { gettext } from '../shared/i18n.js';
import { readJson } from '../shared/page.js';
import { ProtocolClient, socketUrl } from '../shared/protocol-client.js';
import { MessageList } from '../chat/messages.js';

const cfg = readJson('desk-config', {});
const $ = (id) => document.getElementById(id);
const typingEl = $('typing');
const notice = $('desk-notice');
const stateEl = $('desk-state');
const STATE_LABELS = {
  assistant: gettext('with the assistant'),
  waiting: gettext('waiting for an agent'),
  with_agent: gettext('with an agent'),
  resolved: gettext('resolved'),
};
let typingTimer = null;
let typingSentAt = 0;

const list = new MessageList({
  root: $('messages'),
  jump: $('jump-btn'),
  announcerRegion: $('answer-announcer'),
  persona: cfg.persona || {},
  readOnly: () => true, // "Customer", not "You"
});

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

function setConn(kind) {
  const conn = $('desk-conn');
  conn.dataset.state = kind;
  conn.textContent = kind === 'connected' ? gettext('Live') : gettext('Reconnecting…');
}

function onFrame(frame) {
  if (frame.type === 'ready') {
    setConn('connected');
  } else if (frame.type === 'conversation') {
    stateEl.dataset.state = frame.state;
    stateEl.textContent = STATE_LABELS[frame.state] || frame.state;
    if (cfg.holding && frame.state !== 'with_agent') {
      showNotice(gettext('You no longer hold this conversation. Reload the page.'));
    }
  } else if (frame.type === 'typing' && frame.role === 'user') {
    typingEl.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typingEl.hidden = true; }, 4000);
  } else if (frame.type === 'error' && frame.code === 'forbidden') {
    // The server refuses replies from an agent who does not hold the conversation (any more).
    list.dropAllPending();
    showNotice(gettext('You no longer hold this conversation. Reload the page.'));
  }
}

const client = new ProtocolClient({
  url: (id) => socketUrl(String(cfg.wsPathTemplate).replace('{id}', encodeURIComponent(id))),
  conversationId: cfg.conversationId,
  readOnly: !cfg.holding,
  writeFrames: cfg.writeFrames,
  handlers: {
    // "Live" once the server's `ready` arrives (from then on this socket gets every frame).
    status: (kind) => { if (kind !== 'connected') setConn(kind); },
    message: (msg, frame) => list.apply(msg, frame),
    refused: (entry) => {
      list.dropPending(entry.clientId);
      const box = $('desk-text');
      if (box && !box.value) box.value = entry.text;
    },
    frame: onFrame,
  },
});

client.seed(readJson('initial-messages', []));
for (const msg of client.messages.values()) list.render(msg);
client.connect();

const form = $('desk-composer');
if (form) {
  const box = $('desk-text');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text) return;
    const entry = client.post(text);
    list.addPending(entry.clientId, text, 'agent');
    box.value = '';
  });
  box.addEventListener('input', () => {
    const now = Date.now();
    if (now - typingSentAt >= (cfg.typingIntervalMs || 2000) && client.send({ type: 'typing' })) typingSentAt = now;
  });
}
