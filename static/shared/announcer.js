/*
 * One polite announcement per finished answer, for screen readers.
 *
 * A streaming answer changes dozens of times a second; inside a live region every change would
 * be read out (or the reader would keep restarting). So the message lists are not live regions:
 * the message that is streaming carries aria-busy="true", and when it ends its whole text is put
 * once into a visually hidden live region kept for that (#answer-announcer on the chat page and
 * in the widget's frame, #preview-announcer in the persona preview console).
 */

/** A function that announces a text through ``region`` (a polite live region), or does nothing. */
export function announcer(region) {
  let timer = null;
  return (text) => {
    if (!region || !text) return;
    clearTimeout(timer);
    // Emptied first, then filled on the next task: the same text twice is still a change.
    region.textContent = '';
    timer = setTimeout(() => { region.textContent = text; }, 50);
  };
}

/** Mark ``el`` busy while its message streams; true when it just stopped being busy. */
export function setBusy(el, busy) {
  const was = el.getAttribute('aria-busy') === 'true';
  if (busy) el.setAttribute('aria-busy', 'true');
  else el.removeAttribute('aria-busy');
  return was && !busy;
}
