/*
 * The one Markdown renderer for text written by the model or an agent: the chat page, the
 * website widget's frame, the staff transcript view and the persona preview console all show
 * answers through renderMarkdown(), so an answer looks, and is sanitised, the same everywhere.
 *
 * marked (vendor/marked.umd.js) turns Markdown into HTML; DOMPurify (vendor/purify.min.js)
 * keeps only the tags and attributes below. Both are classic scripts the page loads before its
 * modules (they set window.marked and window.DOMPurify). Rules, and why:
 * - no images: a remote image in an answer is a tracking pixel or a way to leak the
 *   conversation through its URL; an image becomes a plain link to it;
 * - links only to http(s) and mailto (no javascript:, data:), opened in a new tab without
 *   referrer or opener;
 * - class only as "language-xyz" (marked's code block languages), no data-* or aria-* from text.
 * The hooks go on a private DOMPurify instance, so they never touch another user of the global.
 * Without the libraries (a failed download) the text is shown escaped, never as HTML.
 */

const ALLOWED_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
const PURIFY_CONFIG = {
  ALLOWED_TAGS: [
    'a', 'b', 'blockquote', 'br', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
    'hr', 'i', 'kbd', 'li', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'sup', 'table',
    'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'u', 'ul',
  ],
  ALLOWED_ATTR: ['href', 'title', 'class', 'start', 'align', 'colspan', 'rowspan', 'lang', 'dir'],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
};

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function plainHtml(text) {
  return '<p>' + escapeHtml(text).replace(/\n/g, '<br>') + '</p>';
}

function createParser() {
  if (!window.marked || typeof window.marked.Marked !== 'function') return null;
  const parser = new window.marked.Marked({ gfm: true, breaks: true, async: false });
  parser.use({
    renderer: {
      image(token) {
        const label = token.text || token.href || '';
        return '<a href="' + escapeHtml(token.href || '') + '">' + escapeHtml(label) + '</a>';
      },
    },
  });
  return parser;
}

function linkAllowed(href) {
  try {
    return ALLOWED_PROTOCOLS.has(new URL(href, window.location.href).protocol);
  } catch (e) {
    return false;
  }
}

function createPurifier() {
  if (typeof window.DOMPurify !== 'function' || typeof window.DOMPurify.sanitize !== 'function') return null;
  const purify = window.DOMPurify(window); // a new instance: its hooks are ours alone
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.hasAttribute && node.hasAttribute('class')) {
      const kept = node.getAttribute('class').split(/\s+/).filter((c) => /^language-[\w+#.-]{1,40}$/.test(c));
      if (kept.length) node.setAttribute('class', kept.join(' '));
      else node.removeAttribute('class');
    }
    if (node.tagName === 'A') {
      const href = node.getAttribute('href');
      if (href !== null && !linkAllowed(href)) node.removeAttribute('href');
      if (node.hasAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      } else {
        node.removeAttribute('target');
      }
    }
  });
  return purify;
}

const parser = createParser();
const purifier = createPurifier();

/** Whether Markdown is rendered at all (both libraries loaded); otherwise text stays escaped. */
export const markdownAvailable = Boolean(parser && purifier);

/** Safe HTML for Markdown ``text``: sanitised, or escaped plain text without the libraries. */
export function renderMarkdown(text) {
  if (!purifier) return plainHtml(text);
  let html;
  try {
    html = parser ? parser.parse(text) : plainHtml(text);
  } catch (e) {
    html = plainHtml(text);
  }
  return purifier.sanitize(html, PURIFY_CONFIG);
}
