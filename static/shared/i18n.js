/*
 * Translations and localised times for every page module.
 *
 * The strings come from Django's JavaScript catalog (/jsi18n/), a classic script each page loads
 * before its modules; it defines the globals gettext, ngettext and interpolate. A page whose
 * catalog failed to load still works, in English: the fallbacks below do what the catalog's
 * functions do with an empty catalog. String literals stay inside gettext(...) calls in the
 * modules themselves, where `makemessages -d djangojs` finds them.
 */

export const gettext = typeof window.gettext === 'function' ? window.gettext : (s) => s;

export const ngettext = typeof window.ngettext === 'function'
  ? window.ngettext
  : (singular, plural, n) => (n === 1 ? singular : plural);

export const interpolate = typeof window.interpolate === 'function'
  ? window.interpolate
  : (fmt, obj, named) => (named
    ? fmt.replace(/%\(\w+\)s/g, (m) => String(obj[m.slice(2, -2)]))
    : fmt.replace(/%s/g, () => String(obj.shift())));

/** A short date and time in the page's language ("14:05" today, "Nov 3, 14:05" otherwise). */
export function timeLabel(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const lang = document.documentElement.lang || undefined;
  const sameDay = date.toDateString() === new Date().toDateString();
  try {
    return new Intl.DateTimeFormat(lang, sameDay
      ? { hour: '2-digit', minute: '2-digit' }
      : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }).format(date);
  } catch (e) {
    return date.toLocaleString();
  }
}
