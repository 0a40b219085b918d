/*
 * What the customer reads for each code of docs/protocol.md: a failed answer's note, and the
 * notice for a refused frame. One home, so the chat page and the widget's frame say the same.
 */
import { gettext, interpolate, ngettext } from '../shared/i18n.js';

/** The note under an answer that failed or was interrupted (``persona`` may override "unavailable"). */
export function failureText(code, persona) {
  switch (code) {
    case 'engine_unavailable':
      return persona.unavailableText || gettext('The assistant is unavailable right now. Please try again in a few minutes.');
    case 'engine_timeout':
      return gettext('The assistant took too long to answer. Please try again.');
    case 'engine_error':
      return gettext('The answer was cut off by a problem with the assistant. You can regenerate it.');
    case 'context_overflow':
      return gettext('This conversation has become too long for the assistant. Please start a new conversation.');
    case 'interrupted':
      return gettext('This answer was interrupted. You can regenerate it.');
    default:
      return gettext('Something went wrong on our side. Please try again.');
  }
}

/** The notice for an `error` frame ('' when the page says nothing). */
export function errorNotice(frame, { maxChars, persona }) {
  switch (frame.code) {
    case 'too_long':
      return interpolate(gettext('Your message is too long (max %(max)s characters).'), { max: maxChars }, true);
    case 'rate_limited': {
      const seconds = Math.max(1, Math.ceil(Number(frame.retry_after) || 1));
      return interpolate(ngettext(
        'You are sending too fast. Please wait %(seconds)s second.',
        'You are sending too fast. Please wait %(seconds)s seconds.',
        seconds), { seconds }, true);
    }
    case 'busy':
      return gettext('Please wait for the current answer, or stop it.');
    case 'empty':
      return gettext('Please type a message first.');
    case 'nothing_to_regenerate':
      return gettext('There is no question to answer again.');
    case 'not_generating':
      return '';
    case 'forbidden':
      return gettext('Only the customer of this conversation can write in it. You can read it, but not send, stop or regenerate.');
    case 'bad_frame':
    case 'unknown_type':
    case 'frame_too_large':
      return gettext('This page sent something the server did not understand. Please reload the page.');
    case 'engine_unavailable':
    case 'engine_timeout':
    case 'engine_error':
    case 'context_overflow':
    case 'internal_error':
      return failureText(frame.code, persona);
    default:
      return gettext('Something went wrong on our side. Please try again.');
  }
}
