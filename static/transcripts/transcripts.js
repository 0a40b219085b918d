/*
 * Transcript pages (staff): answers and agent messages, marked `data-markdown` by the server,
 * are shown as Markdown through the same renderer and sanitising rules as the chat
 * (shared/markdown.js). Without the vendored libraries the server's escaped text stays.
 */
import { markdownAvailable, renderMarkdown } from '../shared/markdown.js';

if (markdownAvailable) {
  for (const el of document.querySelectorAll('[data-markdown]')) {
    el.innerHTML = renderMarkdown(el.textContent);
    el.classList.add('is-rendered');
  }
}
