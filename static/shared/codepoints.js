/*
 * Text measured in Unicode code points, as the server measures it: protocol offsets, the message
 * length limit and the conversation title (Python's len() and slicing) all count code points,
 * while JavaScript string lengths count UTF-16 units (an emoji is 2 of them).
 */

export function cpLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** ``s`` without its first ``count`` code points. */
export function dropCodePoints(s, count) {
  let i = 0;
  while (count > 0 && i < s.length) {
    const c = s.codePointAt(i);
    i += c > 0xffff ? 2 : 1;
    count--;
  }
  return s.slice(i);
}

/** The first ``count`` code points of ``s``. */
export function firstCodePoints(s, count) {
  return Array.from(s).slice(0, count).join('');
}
