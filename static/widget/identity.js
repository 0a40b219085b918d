/*
 * Who the visitor is inside the website widget's frame (docs/widget.md).
 *
 * A cross-site iframe gets no cookies, so the visitor is a signed token (issued with the frame's
 * page) sent as a header and as a websocket subprotocol; the current conversation id is kept
 * next to it. Where both are kept, best first:
 * 1. the host page's own localStorage, through anyhour-widget.js (first-party storage: it
 *    survives where this third-party frame's storage is blocked, e.g. with third-party cookies
 *    blocked in Chrome, Safari, Brave); it hands them over with an "anyhour:hello" message;
 * 2. this frame's localStorage (partitioned by the top-level site where browsers partition);
 * 3. memory only: a new visitor on every page (storage blocked and no host script).
 */

const HELLO_TIMEOUT_MS = 2000;

/** Whether ``origin`` is on the widget's allow-list (exact, or the ``scheme://*.domain`` form). */
function originAllowed(origin, allowed) {
  const match = /^(https?):\/\/([^\/:]+)(?::(\d+))?$/.exec(String(origin || ''));
  if (!match) return false;
  return (allowed || []).some((entry) => {
    if (entry === origin) return true;
    const wild = /^(https?):\/\/\*\.([^\/:]+)(?::(\d+))?$/.exec(entry);
    return Boolean(wild) && wild[1] === match[1] && (wild[3] || '') === (match[3] || '')
      && match[2].endsWith('.' + wild[2]);
  });
}

export class WidgetIdentity {
  /** ``widget``: the page config's widget block (token, storageKey, origins). */
  constructor(widget) {
    this.widget = widget;
    this.token = null;
    this.conversation = null;
    this.parentOrigin = null; // the host page, once it said hello from an allowed origin
  }

  storedInFrame() {
    try {
      const value = JSON.parse(window.localStorage.getItem(this.widget.storageKey) || 'null');
      return value && typeof value === 'object' ? value : {};
    } catch (e) {
      return {};
    }
  }

  adopt(value) {
    if (!value || typeof value !== 'object') return false;
    if (typeof value.token !== 'string' || !value.token) return false;
    this.token = value.token;
    this.conversation = typeof value.conversation === 'string' && value.conversation ? value.conversation : null;
    return true;
  }

  /** Change and keep the identity, in this frame's storage and the host page's. */
  save(changes) {
    Object.assign(this, changes);
    const value = { token: this.token, conversation: this.conversation };
    try {
      window.localStorage.setItem(this.widget.storageKey, JSON.stringify(value));
    } catch (e) { /* blocked third-party storage: the host page keeps it */ }
    if (this.parentOrigin) {
      window.parent.postMessage({ type: 'anyhour:identity', identity: value }, this.parentOrigin);
    }
  }

  /** The visitor's token; the one issued with this page when the visitor is new. */
  currentToken() {
    if (!this.token) this.save({ token: this.widget.token });
    return this.token;
  }

  /** Learn who this visitor is, then call ``done`` (once). */
  resolve(done) {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      done();
    };
    if (window.parent === window) { // opened on its own, not framed
      this.adopt(this.storedInFrame());
      finish();
      return;
    }
    window.addEventListener('message', (event) => {
      if (event.source !== window.parent || !event.data || event.data.type !== 'anyhour:hello') return;
      // Only the sites on the list may frame this page at all (CSP); check again here.
      if (!originAllowed(event.origin, this.widget.origins)) return;
      this.parentOrigin = event.origin;
      if (!finished) {
        if (!this.adopt(event.data.identity)) this.adopt(this.storedInFrame());
        finish();
      }
      if (this.token) this.save({}); // keep both stores in step
    });
    setTimeout(() => { // no host script (the frame was embedded by hand): this frame's storage only
      if (!finished) this.adopt(this.storedInFrame());
      finish();
    }, HELLO_TIMEOUT_MS);
  }

  /** Start over: forget the conversation (and with ``visitor`` the visitor too), then reload. */
  reset(visitor) {
    this.save(visitor ? { token: null, conversation: null } : { conversation: null });
    setTimeout(() => window.location.reload(), 100); // let the host page store the change first
  }
}
