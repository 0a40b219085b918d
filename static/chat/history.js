/*
 * The chat page's sidebar: the customer's conversations, searched, archived, renamed and deleted
 * (docs/accounts.md). The server renders the first list; this module lists again over JSON
 * (history URLs in the page config), adds a new conversation at the top, and gives each item its
 * menu. Titles and snippets are user text: they are only ever set as text, never as HTML.
 */
import { gettext, interpolate, timeLabel } from '../shared/i18n.js';
import { csrfToken } from '../shared/page.js';

const SEARCH_DEBOUNCE_MS = 250;
// The sidebar's own elements, looked up once.
const $ = (id) => document.getElementById(id);

export class History {
  /**
   * @param {object} options
   * @param {object} options.config  the page config (history and conversation URL templates)
   * @param {(text: string, kind: string, durationMs?: number) => void} options.notify  the notice line
   * @param {() => string|null} options.currentId  the conversation shown on the page
   * @param {(url: string) => void} options.leave  go to ``url`` (the shown conversation was deleted)
   */
  constructor({ config, notify, currentId, leave }) {
    this.config = config;
    this.notify = notify;
    this.currentId = currentId;
    this.leave = leave;
    this.list = $('conversation-list');
    this.mode = 'active'; // 'active' | 'archived' | 'search'
    this.previousMode = 'active'; // where an emptied search goes back to
    this.query = '';
    this.timer = null;
    this.request = 0; // number of the latest list request: older answers are dropped
    this.openMenu = null;
    if (this.list) this.bind();
  }

  bind() {
    for (const li of this.list.querySelectorAll('li')) this.enhanceItem(li);
    const search = $('history-search');
    if (search) search.addEventListener('input', (event) => this.onSearchInput(event));
    const toggle = $('archived-toggle');
    if (toggle) {
      toggle.hidden = false;
      toggle.addEventListener('click', () => this.showList(this.mode === 'archived' ? 'active' : 'archived'));
    }
    document.addEventListener('click', (event) => {
      if (this.openMenu && !this.openMenu.menu.contains(event.target)) this.closeMenu();
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.openMenu) {
        const { button } = this.openMenu;
        this.closeMenu();
        button.focus();
      }
    });
  }

  conversationUrl(id) {
    return String(this.config.conversationUrlTemplate).replace('{id}', id);
  }

  /** The conversation just created on this page, first in the list and marked current. */
  add(id, url, title) {
    if (!this.list) return;
    const empty = $('conversation-list-empty');
    if (empty) empty.remove();
    for (const link of this.list.querySelectorAll('a[aria-current]')) link.removeAttribute('aria-current');
    const now = new Date().toISOString();
    const li = this.item({ id, url, title, updated_at: now });
    li.querySelector('.conv-link').setAttribute('aria-current', 'page');
    this.setStatus('');
    this.list.prepend(li);
  }

  // --- lists ---------------------------------------------------------------------------------

  async postAction(id, action, fields) {
    const url = String(this.config.conversationActionUrlTemplate)
      .replace('{id}', encodeURIComponent(id)).replace('{action}', action);
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRFToken': csrfToken(), Accept: 'application/json' },
        body: new URLSearchParams(fields || {}),
      });
    } catch (e) {
      this.notify(gettext('Could not reach the server. Check your connection and try again.'), 'error');
      return null;
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message;
      this.notify(message || gettext('Something went wrong on our side. Please try again.'), 'error');
      return null;
    }
    return data || {};
  }

  setStatus(text) {
    const status = $('history-status');
    if (!status) return;
    status.textContent = text || '';
    status.hidden = !text;
  }

  setTitle() {
    const title = $('sidebar-title');
    if (title) {
      const key = this.mode === 'search' ? 'resultsLabel' : this.mode === 'archived' ? 'archivedLabel' : 'activeLabel';
      if (title.dataset[key]) title.textContent = title.dataset[key];
    }
    const toggle = $('archived-toggle');
    if (toggle) {
      toggle.hidden = this.mode === 'search';
      const archived = this.mode === 'archived';
      toggle.setAttribute('aria-pressed', archived ? 'true' : 'false');
      toggle.textContent = archived ? toggle.dataset.hideLabel : toggle.dataset.showLabel;
    }
  }

  /** A list item built from a JSON item, with text only (titles and snippets are user text). */
  item(item) {
    const li = document.createElement('li');
    li.className = 'conv-item';
    const link = document.createElement('a');
    link.className = 'conv-link';
    link.href = item.url || this.conversationUrl(item.id);
    link.dataset.conversationId = item.id;
    if (item.archived) link.dataset.archived = 'true';
    if (item.id === this.currentId()) link.setAttribute('aria-current', 'page');
    const title = document.createElement('span');
    title.className = 'conv-title';
    title.textContent = item.title || gettext('New conversation');
    link.appendChild(title);
    if (item.snippet) {
      const snippet = document.createElement('span');
      snippet.className = 'conv-snippet';
      const mark = document.createElement('mark');
      mark.textContent = item.snippet.match;
      snippet.append(document.createTextNode(item.snippet.before), mark, document.createTextNode(item.snippet.after));
      link.appendChild(snippet);
    }
    const time = document.createElement('time');
    time.className = 'conv-time';
    time.dateTime = item.updated_at || '';
    time.textContent = timeLabel(item.updated_at);
    link.appendChild(time);
    li.appendChild(link);
    this.enhanceItem(li);
    return li;
  }

  emptyText() {
    if (this.mode === 'search') return gettext('No conversation matches your search.');
    return this.mode === 'archived' ? gettext('No archived conversations.') : gettext('No conversations yet.');
  }

  renderList(items) {
    this.closeMenu();
    this.list.replaceChildren(...items.map((item) => this.item(item)));
    this.setStatus(items.length ? '' : this.emptyText());
    this.setTitle();
  }

  async load(url) {
    const number = ++this.request;
    this.list.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      if (number !== this.request) return;
      this.renderList(data.results || data.conversations || []);
    } catch (e) {
      if (number === this.request) this.notify(gettext('Could not load your conversations. Please try again.'), 'error');
    } finally {
      if (number === this.request) this.list.removeAttribute('aria-busy');
    }
  }

  showList(mode) {
    this.mode = mode;
    const url = new URL(this.config.historyUrl, window.location.href);
    if (mode === 'archived') url.searchParams.set('archived', '1');
    return this.load(url.pathname + url.search);
  }

  runSearch() {
    const query = this.query;
    if (!query) {
      this.showList(this.previousMode);
      return;
    }
    if (this.mode !== 'search') this.previousMode = this.mode;
    this.mode = 'search';
    const url = new URL(this.config.historySearchUrl, window.location.href);
    url.searchParams.set('q', query);
    this.load(url.pathname + url.search);
  }

  onSearchInput(event) {
    const query = event.target.value.trim();
    if (query === this.query) return;
    this.query = query;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.runSearch(), query ? SEARCH_DEBOUNCE_MS : 0);
  }

  // --- the menu of one conversation ------------------------------------------------------------

  closeMenu() {
    if (!this.openMenu) return;
    const { menu, button } = this.openMenu;
    menu.remove();
    button.setAttribute('aria-expanded', 'false');
    this.openMenu = null;
  }

  openMenuOf(li, button) {
    const wasOpen = this.openMenu && this.openMenu.button === button;
    this.closeMenu();
    if (wasOpen) return;
    const link = li.querySelector('.conv-link');
    const menu = document.createElement('div');
    menu.className = 'conv-menu';
    menu.setAttribute('role', 'menu');
    const archived = link.dataset.archived === 'true' || this.mode === 'archived';
    menu.append(
      menuItem(gettext('Rename'), 'rename'),
      archived ? menuItem(gettext('Unarchive'), 'unarchive') : menuItem(gettext('Archive'), 'archive'),
      menuItem(gettext('Delete'), 'delete', true),
    );
    menu.addEventListener('click', (event) => {
      const choice = event.target.closest('[data-action]');
      if (!choice) return;
      this.closeMenu();
      this.act(li, choice.dataset.action);
    });
    li.appendChild(menu);
    button.setAttribute('aria-expanded', 'true');
    this.openMenu = { menu, button };
    const first = menu.querySelector('button');
    if (first) first.focus();
  }

  enhanceItem(li) {
    const link = li.querySelector('.conv-link');
    if (!link || li.querySelector('.conv-menu-btn')) return;
    li.classList.add('conv-item');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'conv-menu-btn';
    button.setAttribute('aria-haspopup', 'menu');
    button.setAttribute('aria-expanded', 'false');
    const title = link.querySelector('.conv-title');
    button.setAttribute('aria-label', menuLabel(title ? title.textContent : ''));
    button.textContent = '⋯';
    button.addEventListener('click', (event) => {
      event.preventDefault();
      event.stopPropagation();
      this.openMenuOf(li, button);
    });
    li.appendChild(button);
  }

  removeItem(li) {
    li.remove();
    if (!this.list.querySelector('.conv-link')) this.setStatus(this.emptyText());
  }

  startRename(li) {
    const link = li.querySelector('.conv-link');
    const title = link.querySelector('.conv-title');
    const id = link.dataset.conversationId;
    const form = document.createElement('form');
    form.className = 'conv-rename';
    const input = document.createElement('input');
    input.type = 'text';
    input.className = 'conv-rename-input';
    input.maxLength = this.config.titleMaxLength;
    input.required = true;
    input.value = title.textContent;
    input.setAttribute('aria-label', gettext('New title'));
    form.appendChild(input);
    link.hidden = true;
    const menuButton = li.querySelector('.conv-menu-btn');
    if (menuButton) menuButton.hidden = true;
    li.insertBefore(form, link);
    input.focus();
    input.select();
    let done = false;
    const finish = () => {
      done = true;
      form.remove();
      link.hidden = false;
      if (menuButton) menuButton.hidden = false;
    };
    const save = async () => {
      if (done) return;
      const value = input.value.trim();
      if (!value || value === title.textContent) {
        finish();
        return;
      }
      done = true;
      input.disabled = true;
      const data = await this.postAction(id, 'rename', { title: value });
      done = false;
      if (data && data.title) {
        title.textContent = data.title;
        if (menuButton) menuButton.setAttribute('aria-label', menuLabel(data.title));
        if (id === this.currentId()) document.title = data.title + ' · Anyhour';
        finish();
      } else {
        input.disabled = false;
        input.focus();
      }
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      save();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        finish();
        link.focus();
      }
    });
    input.addEventListener('blur', () => {
      if (!done && !input.disabled) save();
    });
  }

  async act(li, action) {
    const link = li.querySelector('.conv-link');
    if (!link) return;
    const id = link.dataset.conversationId;
    if (action === 'rename') {
      this.startRename(li);
    } else if (action === 'archive' || action === 'unarchive') {
      const data = await this.postAction(id, action);
      if (!data) return;
      if (this.mode === 'search') {
        link.dataset.archived = data.archived ? 'true' : 'false';
      } else {
        this.removeItem(li);
      }
      this.notify(data.archived ? gettext('Conversation archived.') : gettext('Conversation restored.'), 'info', 4000);
    } else if (action === 'delete') {
      // eslint-disable-next-line no-alert
      if (!window.confirm(gettext('Delete this conversation and all its messages? This cannot be undone.'))) return;
      const data = await this.postAction(id, 'delete');
      if (!data) return;
      if (id === this.currentId()) {
        this.leave(data.redirect || '/');
        return;
      }
      this.removeItem(li);
      this.notify(gettext('Conversation deleted.'), 'info', 4000);
    }
  }
}

function menuItem(label, action, danger) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'conv-menu-item' + (danger ? ' danger' : '');
  button.setAttribute('role', 'menuitem');
  button.dataset.action = action;
  button.textContent = label;
  return button;
}

function menuLabel(title) {
  return interpolate(gettext('Options for “%(title)s”'), { title }, true);
}
