/*
 * Behaviour shared by every page that extends base.html: the language switcher submits itself,
 * and flash messages can be dismissed (success and info ones leave by themselves).
 */
const AUTO_DISMISS_MS = 8000;

function dismiss(flash) {
  const list = flash.parentElement;
  flash.remove();
  if (list && !list.children.length) list.remove();
}

document.documentElement.classList.add('js');

// The language switcher submits itself when JavaScript runs (its button stays for no-JS).
const select = document.getElementById('language-select');
if (select && select.form) select.addEventListener('change', () => select.form.submit());

for (const flash of document.querySelectorAll('.flash')) {
  const close = flash.querySelector('.flash-close');
  if (close) close.addEventListener('click', () => dismiss(flash));
  const level = flash.dataset.level;
  if (level === 'success' || level === 'info') {
    setTimeout(() => {
      // Keep a message the reader is pointing at or has focused.
      if (flash.matches(':hover') || flash.contains(document.activeElement)) return;
      if (flash.isConnected) dismiss(flash);
    }, AUTO_DISMISS_MS);
  }
}
