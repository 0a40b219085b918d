/*
 * The persona editor's preview console: a compact client of docs/protocol.md.
 *
 * "New preview" asks the server for a preview conversation pinned to the chosen version (POST,
 * CSRF), then speaks the ordinary chat websocket on it: send -> ack, message, start, delta...,
 * end. Answers are rendered as sanitised Markdown (marked + DOMPurify), as in the chat.
 * Needs the Django JavaScript catalog (gettext), vendor/marked.umd.js and vendor/purify.min.js.
 */
(function () {
  'use strict';

  const gettext = typeof window.gettext === 'function' ? window.gettext : (s) => s;
  const interpolate = typeof window.interpolate === 'function'
    ? window.interpolate
    : (fmt, obj) => fmt.replace(/%\(\w+\)s/g, (m) => String(obj[m.slice(2, -2)]));

  const root = document.getElementById('preview');
  if (!root) return;
  const log = document.getElementById('preview-log');
  const statusEl = document.getElementById('preview-status');
  const versionSelect = document.getElementById('preview-version');
  const input = document.getElementById('preview-input');
  const form = document.getElementById('preview-form');
  const startBtn = document.getElementById('preview-start');
  const urlTemplate = root.dataset.urlTemplate;

  const ALLOWED_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
  const PURIFY_CONFIG = {
    ALLOWED_TAGS: ['a', 'b', 'blockquote', 'br', 'code', 'del', 'em', 'h1', 'h2', 'h3', 'h4', 'hr', 'i', 'li',
      'ol', 'p', 'pre', 's', 'strong', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul'],
    ALLOWED_ATTR: ['href', 'title'],
    ALLOW_DATA_ATTR: false,
  };
  const markdown = window.marked && typeof window.marked.Marked === 'function'
    ? new window.marked.Marked({ gfm: true, breaks: true, async: false })
    : null;
  const purify = window.DOMPurify && typeof window.DOMPurify.sanitize === 'function' ? window.DOMPurify : null;
  if (purify) {
    purify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A' && node.hasAttribute('href')) {
        let ok = false;
        try { ok = ALLOWED_PROTOCOLS.has(new URL(node.getAttribute('href'), window.location.href).protocol); } catch (e) { ok = false; }
        if (!ok) node.removeAttribute('href');
        else { node.setAttribute('target', '_blank'); node.setAttribute('rel', 'noopener noreferrer nofollow'); }
      }
    });
  }

  function render(el, text) {
    if (markdown && purify) {
      try {
        el.innerHTML = purify.sanitize(markdown.parse(text), PURIFY_CONFIG);
        return;
      } catch (e) { /* plain text below */ }
    }
    el.textContent = text;
  }

  function csrfToken() {
    const field = document.querySelector('input[name=csrfmiddlewaretoken]');
    if (field) return field.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : '';
  }

  function setStatus(text) { statusEl.textContent = text; }

  let ws = null;
  let version = null;
  const bubbles = new Map(); // seq -> {el, text}

  function bubble(seq, role, status) {
    let entry = bubbles.get(seq);
    if (!entry) {
      const el = document.createElement('div');
      el.className = 'pp-msg';
      el.dataset.seq = String(seq);
      el.dataset.role = role;
      const content = document.createElement('div');
      content.className = 'content';
      el.appendChild(content);
      log.appendChild(el);
      entry = { el, content, text: '' };
      bubbles.set(seq, entry);
    }
    if (status) entry.el.dataset.status = status;
    return entry;
  }

  function show(message) {
    const entry = bubble(message.seq, message.role, message.status);
    entry.text = message.content || '';
    if (message.role === 'user') entry.content.textContent = entry.text;
    else render(entry.content, entry.text);
    log.scrollTop = log.scrollHeight;
  }

  function onFrame(frame) {
    switch (frame.type) {
      case 'ready':
        setStatus(interpolate(gettext('Previewing version %(number)s. Answers use this version\'s prompt and settings.'),
          { number: version }, true));
        input.disabled = false;
        break;
      case 'ack':
      case 'message':
        show(frame.message);
        break;
      case 'start':
        show(frame.message);
        break;
      case 'delta': {
        const entry = bubble(frame.seq, 'assistant', 'streaming');
        if (frame.offset === entry.text.length) {
          entry.text += frame.text;
          render(entry.content, entry.text);
          log.scrollTop = log.scrollHeight;
        }
        break;
      }
      case 'end':
        show(frame.message);
        break;
      case 'error':
        setStatus(frame.message || gettext('Something went wrong'));
        break;
      default:
        break;
    }
  }

  async function start() {
    if (ws) { ws.close(); ws = null; }
    log.textContent = '';
    bubbles.clear();
    version = versionSelect.value;
    input.disabled = true;
    setStatus(gettext('Starting the preview…'));
    let data;
    try {
      const response = await fetch(urlTemplate.replace('{n}', encodeURIComponent(version)), {
        method: 'POST', headers: { 'X-CSRFToken': csrfToken() }, credentials: 'same-origin',
      });
      if (!response.ok) throw new Error(String(response.status));
      data = await response.json();
    } catch (e) {
      setStatus(gettext('Could not start the preview.'));
      return;
    }
    root.dataset.conversation = data.id;
    const scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + window.location.host + data.ws);
    ws.onmessage = (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (e) { /* ignore a malformed frame */ }
    };
    ws.onclose = () => { input.disabled = true; };
  }

  function send() {
    const text = input.value.trim();
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    const clientId = 'p-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 8);
    ws.send(JSON.stringify({ type: 'send', text, client_id: clientId }));
    input.value = '';
  }

  startBtn.addEventListener('click', start);
  document.querySelectorAll('.preview-btn').forEach((button) => {
    button.addEventListener('click', () => {
      versionSelect.value = button.dataset.number;
      root.scrollIntoView({ behavior: 'smooth', block: 'start' });
      start();
    });
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!ws) await start();
    if (ws && ws.readyState === WebSocket.CONNECTING) {
      ws.addEventListener('open', () => setTimeout(send, 50), { once: true });
      return;
    }
    send();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.disabled = false;
}());
