/*
 * The persona editor's preview console (templates/chat/personas/editor.html, docs/personas.md).
 *
 * "New preview" asks the server for a preview conversation pinned to the chosen version (POST,
 * CSRF); the console then talks to it through the same protocol client as the chat page
 * (shared/protocol-client.js: resume, reconnect with backoff, a message typed while connecting
 * is sent once the socket opens), and shows answers through the same Markdown renderer
 * (shared/markdown.js), so a preview looks exactly like what customers will see. As in the chat,
 * a streaming answer is aria-busy and announced once when it ends.
 */
import { announcer, setBusy } from '../shared/announcer.js';
import { gettext, interpolate } from '../shared/i18n.js';
import { renderMarkdown } from '../shared/markdown.js';
import { csrfToken } from '../shared/page.js';
import { ProtocolClient, socketUrl } from '../shared/protocol-client.js';

const root = document.getElementById('preview');
const log = document.getElementById('preview-log');
const statusEl = document.getElementById('preview-status');
const versionSelect = document.getElementById('preview-version');
const input = document.getElementById('preview-input');
const form = document.getElementById('preview-form');
const announce = announcer(document.getElementById('preview-announcer'));

let version = null;
let socketPath = null; // the preview conversation's websocket path, from the server
const bubbles = new Map(); // seq -> element

function setStatus(text) {
  statusEl.textContent = text;
}

function show(msg) {
  let el = bubbles.get(msg.seq);
  if (!el) {
    el = document.createElement('div');
    el.className = 'pp-msg';
    el.dataset.seq = String(msg.seq);
    el.appendChild(document.createElement('div')).className = 'content';
    log.appendChild(el);
    bubbles.set(msg.seq, el);
  }
  el.dataset.role = msg.role;
  el.dataset.status = msg.status;
  const content = el.querySelector('.content');
  if (msg.role === 'user') content.textContent = msg.content;
  else content.innerHTML = renderMarkdown(msg.content);
  if (setBusy(el, msg.status === 'streaming')) announce(content.textContent.trim());
  log.scrollTop = log.scrollHeight;
}

const client = new ProtocolClient({
  url: () => socketUrl(socketPath),
  handlers: {
    message: show,
    frame: (frame) => {
      if (frame.type === 'ready') {
        setStatus(interpolate(gettext('Previewing version %(number)s. Answers use this version\'s prompt and settings.'),
          { number: version }, true));
        input.disabled = false;
      } else if (frame.type === 'error') {
        setStatus(frame.message || gettext('Something went wrong'));
      }
    },
    closed: () => { input.disabled = true; },
  },
});

async function start() {
  client.leave();
  log.textContent = '';
  bubbles.clear();
  version = versionSelect.value;
  input.disabled = true;
  setStatus(gettext('Starting the preview…'));
  let data;
  try {
    const response = await fetch(root.dataset.urlTemplate.replace('{n}', encodeURIComponent(version)), {
      method: 'POST', headers: { 'X-CSRFToken': csrfToken() }, credentials: 'same-origin',
    });
    if (!response.ok) throw new Error(String(response.status));
    data = await response.json();
  } catch (e) {
    setStatus(gettext('Could not start the preview.'));
    return;
  }
  root.dataset.conversation = data.id;
  socketPath = data.ws;
  client.open(data.id);
}

document.getElementById('preview-start').addEventListener('click', start);
document.querySelectorAll('.preview-btn').forEach((button) => {
  button.addEventListener('click', () => {
    versionSelect.value = button.dataset.number;
    root.scrollIntoView({ behavior: 'smooth', block: 'start' });
    start();
  });
});
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  if (!client.conversationId) await start();
  if (!client.conversationId) return; // the preview could not start: the status line says why
  client.post(text);
  input.value = '';
});
input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
input.disabled = false;
