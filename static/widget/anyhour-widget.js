/*
 * Anyhour website widget: a chat bubble for a company's website (docs/widget.md).
 *
 *   <script src="https://chat.example.com/static/widget/anyhour-widget.js" data-widget="KEY" async></script>
 *
 * Reads its look from /widget/KEY/config (CORS: only the widget's allowed origins get an answer;
 * elsewhere nothing is drawn), then draws a bubble button that opens the chat in an iframe
 * (/widget/KEY/, framed only by the allowed origins: CSP frame-ancestors). Everything lives in
 * one shadow root, so the page's CSS and this one's do not touch. No globals; including the
 * script twice draws one bubble.
 */
(function () {
  'use strict';

  var COLOUR = /^#[0-9a-fA-F]{6}$/;
  var ICON_CHAT = '<svg aria-hidden="true" viewBox="0 0 24 24" width="28" height="28"><path d="M4 5h16v11H9l-5 4V5z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/></svg>';
  var ICON_CLOSE = '<svg aria-hidden="true" viewBox="0 0 24 24" width="26" height="26"><path d="M6 6l12 12M18 6L6 18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';

  function css(colour, text, side) {
    return [
      ':host{all:initial}',
      '.bubble{position:fixed;bottom:20px;' + side + ':20px;z-index:2147483000;width:60px;height:60px;border:0;border-radius:50%;',
      'background:' + colour + ';color:' + text + ';cursor:pointer;display:flex;align-items:center;justify-content:center;',
      'box-shadow:0 4px 14px rgba(0,0,0,.25);transition:transform .15s ease}',
      '.bubble:hover{transform:scale(1.05)}',
      '.bubble:focus-visible{outline:3px solid ' + colour + ';outline-offset:3px}',
      '.panel{position:fixed;bottom:92px;' + side + ':20px;z-index:2147483000;width:380px;height:620px;',
      'max-width:calc(100vw - 40px);max-height:calc(100vh - 120px);border-radius:16px;overflow:hidden;background:#fff;',
      'box-shadow:0 10px 40px rgba(0,0,0,.28)}',
      '.panel[hidden]{display:none}',
      'iframe{display:block;width:100%;height:100%;border:0}',
      // Phones: the chat takes the whole screen; the close button inside the frame closes it.
      '@media (max-width:480px){.panel{inset:0;width:100vw;height:100vh;height:100dvh;max-width:none;max-height:none;border-radius:0}',
      '.open .bubble{display:none}}',
    ].join('');
  }

  function scriptsToStart() {
    var current = document.currentScript;
    if (current && current.getAttribute('data-widget')) return [current];
    // Very old browsers, or loaded by a tag manager: every tag of ours that names a widget.
    return Array.prototype.filter.call(document.querySelectorAll('script[data-widget][src]'), function (s) {
      return /anyhour-widget(\.[0-9a-f]+)?\.js(\?|$)/.test(s.src);
    });
  }

  function start(script) {
    var key = script.getAttribute('data-widget');
    if (!key || !/^[A-Za-z0-9_-]{8,64}$/.test(key)) return;
    var marker = 'anyhour-widget-' + key;
    if (document.getElementById(marker)) return; // included twice: one bubble
    var host = document.createElement('div');
    host.id = marker;
    host.setAttribute('data-anyhour-widget', key);
    // Claim the place now, so a second copy of the script running before the config arrives
    // also sees it.
    document.body.appendChild(host);
    var base = new URL(script.src, document.baseURI).origin;
    fetch(base + '/widget/' + encodeURIComponent(key) + '/config', { credentials: 'omit', mode: 'cors' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (config) { draw(host, base, key, config); })
      .catch(function (error) {
        host.remove();
        if (window.console) {
          window.console.warn('Anyhour widget ' + key + ' is not available on ' + window.location.origin +
            ' (is this origin on the widget\'s allow-list?)', error);
        }
      });
  }

  function draw(host, base, key, config) {
    var colour = COLOUR.test(config.colour) ? config.colour : '#2563eb';
    var text = COLOUR.test(config.textColour) ? config.textColour : '#ffffff';
    var side = config.position === 'left' ? 'left' : 'right';
    var labels = config.labels || {};
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var style = document.createElement('style');
    style.textContent = css(colour, text, side);
    var wrap = document.createElement('div');
    var panelId = 'anyhour-panel-' + key;
    var bubble = document.createElement('button');
    bubble.type = 'button';
    bubble.className = 'bubble';
    bubble.setAttribute('aria-expanded', 'false');
    bubble.setAttribute('aria-controls', panelId);
    var panel = document.createElement('div');
    panel.className = 'panel';
    panel.id = panelId;
    panel.hidden = true;
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', String(config.title || 'Chat'));
    var frame = null;

    function label() {
      var open = !panel.hidden;
      bubble.innerHTML = open ? ICON_CLOSE : ICON_CHAT;
      bubble.setAttribute('aria-label', String(open ? (labels.close || 'Close chat') : (labels.open || 'Open chat')));
      bubble.setAttribute('aria-expanded', open ? 'true' : 'false');
      wrap.className = open ? 'open' : '';
    }

    function focusFrame() {
      if (!frame) return;
      frame.focus();
      frame.contentWindow.postMessage({ type: 'anyhour:opened' }, base);
    }

    // The visitor's identity (a signed token and the open conversation's id) is kept here, in
    // this site's own storage: the frame's third-party storage may be blocked or wiped.
    var storageKey = 'anyhour.widget.' + key;
    function readIdentity() {
      try {
        var value = JSON.parse(window.localStorage.getItem(storageKey) || 'null');
        return value && typeof value === 'object' ? value : null;
      } catch (e) {
        return null;
      }
    }
    function writeIdentity(value) {
      try {
        if (value && value.token) window.localStorage.setItem(storageKey, JSON.stringify({
          token: String(value.token), conversation: value.conversation ? String(value.conversation) : null,
        }));
        else window.localStorage.removeItem(storageKey);
      } catch (e) { /* storage blocked: a new visitor next time */ }
    }
    function hello() {
      if (frame) frame.contentWindow.postMessage({ type: 'anyhour:hello', identity: readIdentity() }, base);
    }

    function open() {
      if (!frame) {
        // Created on first open: pages where nobody chats never load the chat.
        frame = document.createElement('iframe');
        frame.title = String(config.title || 'Chat');
        frame.src = base + (config.frameUrl || '/widget/' + encodeURIComponent(key) + '/');
        frame.setAttribute('allow', 'clipboard-write');
        frame.addEventListener('load', function () {
          hello(); // on every load: the frame reloads itself to start over
          focusFrame();
        });
        panel.appendChild(frame);
      } else {
        focusFrame();
      }
      panel.hidden = false;
      label();
    }

    function close() {
      if (panel.hidden) return;
      panel.hidden = true;
      label();
      bubble.focus();
    }

    bubble.addEventListener('click', function () {
      if (panel.hidden) open();
      else close();
    });
    document.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && !panel.hidden) close();
    });
    window.addEventListener('message', function (event) {
      // Only our own frame may close the panel.
      if (!frame || event.source !== frame.contentWindow || event.origin !== base) return;
      if (!event.data) return;
      if (event.data.type === 'anyhour:close') close();
      else if (event.data.type === 'anyhour:identity') writeIdentity(event.data.identity);
    });

    wrap.appendChild(panel);
    wrap.appendChild(bubble);
    root.appendChild(style);
    root.appendChild(wrap);
    label();
  }

  var scripts = scriptsToStart();
  function startAll() {
    for (var i = 0; i < scripts.length; i++) start(scripts[i]);
  }
  // An async script may run before <body> exists.
  if (document.body) startAll();
  else document.addEventListener('DOMContentLoaded', startAll);
})();
