/*
 * The agent desk's lists (templates/desk/desk.html): a websocket to /ws/desk/ (desk/consumers.py)
 * says when the queue changed, and the list part is fetched again from the server
 * (desk:panel), so what shows always passes the server's access rules. Escalation alerts
 * (`alert` frames) are listed above, as text. Reconnects with backoff.
 */
import { gettext } from '../shared/i18n.js';
import { socketUrl } from '../shared/protocol-client.js';

const panel = document.getElementById('desk-panel');
const alerts = document.getElementById('desk-alerts');
const live = document.getElementById('desk-live');
const MAX_ALERTS = 20;
let attempt = 0;
let refreshing = null;
let again = false;

function setLive(state) {
  live.dataset.state = state;
  live.textContent = state === 'live' ? gettext('Live') : gettext('Reconnecting…');
}

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  const view = new URLSearchParams(window.location.search).get('view') || 'queue';
  const url = new URL(panel.dataset.panelUrl, window.location.href);
  url.searchParams.set('view', view);
  refreshing = fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
  try {
    const response = await refreshing;
    if (response.ok) panel.innerHTML = await response.text();
  } catch (e) { /* the next event or reconnect refreshes again */ }
  refreshing = null;
  if (again) {
    again = false;
    refresh();
  }
}

function addAlert(frame) {
  const li = document.createElement('li');
  li.className = 'desk-alert';
  li.dataset.level = frame.level || 'info';
  if (frame.conversation) {
    const a = document.createElement('a');
    a.href = alerts.dataset.conversationUrlTemplate.replace('__id__', encodeURIComponent(frame.conversation));
    a.textContent = frame.text || gettext('Escalation');
    li.appendChild(a);
  } else {
    li.textContent = frame.text || gettext('Escalation');
  }
  alerts.prepend(li);
  while (alerts.children.length > MAX_ALERTS) alerts.lastChild.remove();
}

function connect() {
  const ws = new WebSocket(socketUrl('/ws/desk/'));
  ws.addEventListener('message', (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (frame.type === 'ready') {
      attempt = 0;
      setLive('live');
      refresh(); // anything that changed while we were away
    } else if (frame.type === 'queue') {
      refresh();
    } else if (frame.type === 'alert') {
      addAlert(frame);
    }
  });
  ws.addEventListener('close', (event) => {
    setLive('connecting');
    if (event.code === 4403 || event.code === 4401) return;
    attempt += 1;
    setTimeout(connect, Math.min(10000, 500 * 2 ** attempt));
  });
}

connect();
