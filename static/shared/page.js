/*
 * What a page module reads from the page the server rendered: the JSON blocks written by Django's
 * json_script filter (the page's config; constants such as limits come from the server this way
 * and are never copied into the modules), and the CSRF token for same-origin POSTs.
 */

/** The parsed JSON of <script type="application/json" id="..."> (``fallback`` if absent or invalid). */
export function readJson(id, fallback) {
  const el = document.getElementById(id);
  if (!el) return fallback;
  try {
    const value = JSON.parse(el.textContent);
    return value === null || value === undefined ? fallback : value;
  } catch (e) {
    return fallback;
  }
}

/** Django's CSRF token: the cookie, or a rendered {% csrf_token %} field. */
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
  return input ? input.value : '';
}
