/* Transcript pages (staff): model answers are shown as sanitised Markdown, with the same rules as
 * the chat page (static/chat/chat.js): marked, then DOMPurify with a short tag list, no images,
 * links only to http(s)/mailto. Without the libraries the server's escaped text stays. */
(function () {
  'use strict';
  if (!window.marked || !window.DOMPurify || typeof window.DOMPurify.sanitize !== 'function') return;
  const ALLOWED_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
  const CONFIG = {
    ALLOWED_TAGS: [
      'a', 'b', 'blockquote', 'br', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
      'hr', 'i', 'kbd', 'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table',
      'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'u', 'ul',
    ],
    ALLOWED_ATTR: ['href', 'title', 'start', 'align', 'colspan', 'rowspan', 'lang', 'dir'],
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
  };
  const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
  const md = new window.marked.Marked({ gfm: true, breaks: true, async: false });
  md.use({ renderer: { image(token) {
    return '<a href="' + escapeHtml(token.href || '') + '">' + escapeHtml(token.text || token.href || '') + '</a>';
  } } });
  window.DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName !== 'A') return;
    const href = node.getAttribute('href');
    let ok = false;
    try { ok = href !== null && ALLOWED_PROTOCOLS.has(new URL(href, window.location.href).protocol); } catch (e) { ok = false; }
    if (!ok) { node.removeAttribute('href'); return; }
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  });
  document.querySelectorAll('[data-markdown]').forEach((el) => {
    try {
      el.innerHTML = window.DOMPurify.sanitize(md.parse(el.textContent), CONFIG);
      el.classList.add('is-rendered');
    } catch (e) { /* keep the escaped text */ }
  });
}());
