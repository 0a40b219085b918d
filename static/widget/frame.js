/*
 * Anyhour website widget, inside the iframe (docs/widget.md): the close button and Escape ask
 * the host page's script (anyhour-widget.js) to close the bubble. The message carries no data,
 * so it may go to any parent; the host script checks that it came from this frame.
 *
 * Loaded as an async module at the end of the body: it runs as soon as it arrives, before the
 * chat's own scripts, so an early tap on Close works while the rest still loads.
 */
function requestClose() {
  if (window.parent && window.parent !== window) window.parent.postMessage({ type: 'anyhour:close' }, '*');
}

const close = document.getElementById('widget-close');
if (close) {
  // Opened on its own (not in a frame) there is nothing to close.
  if (window.parent === window) close.hidden = true;
  close.addEventListener('click', requestClose);
}
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !event.defaultPrevented) requestClose();
});
window.addEventListener('message', (event) => {
  // The host script says the panel opened: put the cursor in the composer.
  if (event.source === window.parent && event.data && event.data.type === 'anyhour:opened') {
    const composer = document.getElementById('composer');
    if (composer) composer.focus();
  }
});
