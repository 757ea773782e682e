// The portal's shell: sign-in, navigation, controls, URL state, loading/empty/error states
// and CSV downloads. Pages live in pages.js.

import { getKey, setKey, clearKey, getJson, getCsv, saveBlob, apiUrl, ApiError } from './api.js';
import { setupCharts, destroyCharts } from './charts.js';
import { el } from './dom.js';
import { PAGES, parseState, stateToSearch, defaults, browserTimeZone, DEFAULT_PERIODS, DEFAULT_MAX_THEMES } from './state.js';
import { RENDERERS, themesKind, pageHref } from './pages.js';
import { formatDay } from './format.js';

const $ = (id) => document.getElementById(id);

/** Which control groups (`data-for` in index.html) each page uses. */
const CONTROLS = {
  overview: ['survey-filter', 'filters', 'sla', 'interaction-note'],
  nps: ['granularity', 'group_by', 'survey-filter', 'filters'],
  csat: ['granularity', 'group_by', 'survey-filter', 'filters'],
  ces: ['granularity', 'group_by', 'survey-filter', 'filters'],
  'response-times': ['granularity', 'group_by', 'filters', 'sla', 'sla-detail', 'interaction-note'],
  retention: ['granularity', 'nps_category', 'periods', 'retention-note'],
  'comment-themes': ['survey-filter', 'filters', 'kind', 'max_themes'],
  responses: ['survey-filter', 'filters', 'kind', 'comment_query'],
  interactions: ['filters', 'interaction-note'],
};

/** Pages that read interactions, which belong to no survey (no survey filter or grouping). */
const INTERACTION_PAGES = new Set(['response-times', 'interactions']);

const FIELDS = {
  start: 'ctl-start',
  end: 'ctl-end',
  tz: 'ctl-tz',
  granularity: 'ctl-granularity',
  group_by: 'ctl-group-by',
  survey: 'ctl-survey',
  channel: 'ctl-channel',
  agent: 'ctl-agent',
  team: 'ctl-team',
  frt: 'ctl-frt',
  rt: 'ctl-rt',
  calendar: 'ctl-calendar',
  kind: 'ctl-kind',
  comment_query: 'ctl-comment-query',
  max_themes: 'ctl-max-themes',
  periods: 'ctl-periods',
  nps_category: 'ctl-nps-category',
};

let state = parseState(location.search);
let generation = 0;
let controller = null;

function setBodyState(value) {
  document.body.dataset.state = value;
}

// ---------------------------------------------------------------------------------------
// Sign-in

function showSignIn(message, status) {
  destroyCharts();
  if (controller) controller.abort();
  generation += 1;
  $('app').hidden = true;
  $('site-nav').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('main').removeAttribute('aria-busy');
  const error = $('sign-in-error');
  error.dataset.status = status ?? '';
  if (message) {
    error.textContent = message;
    error.hidden = false;
  } else {
    error.textContent = '';
    error.hidden = true;
  }
  $('sign-in-status').textContent = '';
  document.title = 'Sign in · cxmetrics portal';
  setBodyState('signed-out');
  $('api-key').value = '';
}

function showApp() {
  $('sign-in').hidden = true;
  $('app').hidden = false;
  $('site-nav').hidden = false;
  $('sign-out').hidden = false;
}

/** The message for a key the API refused. */
function keyMessage(err) {
  if (err.status === 401) return 'This key is not valid: the server does not know it. Check that you pasted the whole key, or ask for a new one.';
  if (err.status === 403) return 'This key has no read access. Use a key created with the “read” scope.';
  return `The key could not be checked: ${err.message}`;
}

async function signIn(event) {
  event.preventDefault();
  const key = $('api-key').value.trim();
  const error = $('sign-in-error');
  error.hidden = true;
  if (!key) {
    error.textContent = 'Paste an API key first.';
    error.hidden = false;
    $('api-key').focus();
    return;
  }
  const status = $('sign-in-status');
  status.textContent = 'Checking the key…';
  $('sign-in-submit').disabled = true;
  setBodyState('loading');
  try {
    // A cheap call: one row of today's responses.
    const today = new Date();
    const day = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
    const tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
    await getJson(apiUrl('/v1/survey-responses', { start: day(today), end: day(tomorrow), page_size: 1 }), { key });
  } catch (err) {
    status.textContent = '';
    error.textContent = err instanceof ApiError ? keyMessage(err) : `The key could not be checked: ${err.message}`;
    error.hidden = false;
    error.dataset.status = err.status ?? '';
    setBodyState('signed-out');
    $('api-key').focus();
    return;
  } finally {
    $('sign-in-submit').disabled = false;
  }
  setKey(key);
  status.textContent = '';
  $('api-key').value = '';
  showApp();
  history.replaceState(history.state, '', stateToSearch(state));
  render();
  $('page-title').focus();
}

function signOut() {
  clearKey();
  showSignIn();
  $('api-key').focus();
}

// ---------------------------------------------------------------------------------------
// Controls and URL

function fillControls() {
  const timeZones = $('tz-list');
  if (!timeZones.childElementCount && typeof Intl.supportedValuesOf === 'function') {
    timeZones.append(...Intl.supportedValuesOf('timeZone').map((z) => el('option', { value: z })));
  }
  for (const [key, id] of Object.entries(FIELDS)) {
    const node = $(id);
    if (node.type === 'checkbox') node.checked = state[key] === node.value;
    else node.value = state[key] ?? '';
  }
  $('ctl-periods').placeholder = String(DEFAULT_PERIODS);
  $('ctl-max-themes').placeholder = String(DEFAULT_MAX_THEMES);
  $('ctl-tz').placeholder = browserTimeZone();
  // The comment-themes endpoint needs a kind: show the one it uses.
  const allKinds = $('ctl-kind').querySelector('option[value=""]');
  allKinds.hidden = state.page === 'comment-themes';
  allKinds.disabled = state.page === 'comment-themes';
  if (state.page === 'comment-themes') $('ctl-kind').value = themesKind(state);
  // Interactions cannot be grouped by survey: offer no such choice where they are counted.
  const bySurvey = $('ctl-group-by').querySelector('option[value="survey"]');
  bySurvey.hidden = INTERACTION_PAGES.has(state.page);
  bySurvey.disabled = INTERACTION_PAGES.has(state.page);
  if (bySurvey.disabled && state.group_by === 'survey') $('ctl-group-by').value = '';
  const used = new Set(CONTROLS[state.page]);
  for (const node of document.querySelectorAll('#controls [data-for]')) {
    node.hidden = !used.has(node.dataset.for);
  }
}

function readControls() {
  const next = { ...state };
  for (const [key, id] of Object.entries(FIELDS)) {
    const node = $(id);
    if (node.closest('[hidden]')) continue;
    if (node.type === 'checkbox') next[key] = node.checked ? node.value : '';
    else next[key] = node.value.trim();
  }
  if (!next.tz) next.tz = browserTimeZone();
  return next;
}

function updateNav() {
  for (const link of document.querySelectorAll('#site-nav a[data-page]')) {
    const page = link.dataset.page;
    link.href = pageHref(state, { page, page_token: '' });
    if (page === state.page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** Moves to a new state: a new history entry (push) or the current one replaced. */
function navigate(next, { push = true, historyState = null } = {}) {
  state = parseState(stateToSearch(next));
  const url = stateToSearch(state);
  if (push) history.pushState(historyState, '', url);
  else history.replaceState(historyState, '', url);
  render();
}

function onControlsChange() {
  const next = readControls();
  next.page_token = '';
  if (stateToSearch(next) !== stateToSearch(state)) navigate(next);
}

// ---------------------------------------------------------------------------------------
// CSV

let csvFile = 'cxmetrics.csv';

function setCsv(url, filename, label) {
  const button = $('csv-download');
  if (url) {
    button.dataset.apiUrl = url;
    button.dataset.filename = filename;
    button.textContent = label || 'Download CSV';
    button.hidden = false;
    csvFile = filename;
  } else {
    button.dataset.apiUrl = '';
    button.hidden = true;
  }
}

async function downloadCsv(button) {
  const url = button.dataset.apiUrl;
  if (!url) return;
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = 'Preparing CSV…';
  try {
    const blob = await getCsv(url);
    saveBlob(blob, button.dataset.filename || csvFile);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

// ---------------------------------------------------------------------------------------
// Rendering

function showError(err) {
  const box = $('error');
  const parts = [
    el('h2', null, err.problem && err.problem.title ? err.problem.title : 'Something went wrong'),
    el('p', { 'data-detail': 'true' }, err.message),
  ];
  if (err.problem && !err.problem.detail && Array.isArray(err.problem.errors) && err.problem.errors.length) {
    parts.push(el('ul', null, err.problem.errors.map((e) => el('li', null, `${e.field}: ${e.description}`))));
  }
  box.replaceChildren(...parts);
  box.dataset.status = err.status ?? '';
  box.hidden = false;
}

function setLoading(on, label) {
  const loading = $('loading');
  const main = $('main');
  if (on) {
    main.setAttribute('aria-busy', 'true');
    loading.replaceChildren(el('span', { class: 'spinner', 'aria-hidden': 'true' }), el('span', null, label));
    loading.classList.add('active');
  } else {
    main.removeAttribute('aria-busy');
    loading.replaceChildren();
    loading.classList.remove('active');
  }
}

function rangeSummary() {
  const parts = [`${formatDay(state.start)} to ${formatDay(state.end)} (not included)`, state.tz];
  return parts.join(' · ');
}

async function render() {
  if (!getKey()) {
    showSignIn();
    return;
  }
  showApp();
  const my = ++generation;
  if (controller) controller.abort();
  controller = new AbortController();
  const { signal } = controller;
  const title = PAGES[state.page];
  document.title = `${title} · cxmetrics portal`;
  $('page-title').textContent = title;
  fillControls();
  updateNav();
  $('range-summary').textContent = rangeSummary();
  $('error').hidden = true;
  $('error').replaceChildren();
  destroyCharts();
  const content = $('content');
  content.replaceChildren();
  setBodyState('loading');
  setLoading(true, `Loading ${title}…`);
  const ctx = {
    state,
    content,
    signal,
    getJson: (url) => getJson(url, { signal }),
    setCsv,
    onPager: (pager, nextToken) => wirePager(pager, nextToken),
  };
  try {
    const outcome = await RENDERERS[state.page](ctx);
    if (my !== generation) return;
    setLoading(false);
    setBodyState(outcome);
  } catch (err) {
    if (my !== generation || (err && err.name === 'AbortError')) return;
    setLoading(false);
    destroyCharts();
    content.replaceChildren();
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      clearKey();
      showSignIn(keyMessage(err), err.status);
      return;
    }
    showError(err instanceof ApiError ? err : new ApiError(0, { title: 'Something went wrong', detail: String((err && err.message) || err) }));
    setBodyState('error');
    if (!(err instanceof ApiError)) console.warn(err);
  }
}

function wirePager(pager, nextToken) {
  const tokens = (history.state && history.state.tokens) || [];
  pager.querySelector('#page-next').addEventListener('click', () => {
    if (!nextToken) return;
    navigate({ ...state, page_token: nextToken }, { historyState: { tokens: [...tokens, state.page_token] } });
    $('content').focus?.();
  });
  pager.querySelector('#page-previous').addEventListener('click', () => {
    if (!tokens.length) return;
    const rest = tokens.slice(0, -1);
    navigate({ ...state, page_token: tokens[tokens.length - 1] }, { historyState: { tokens: rest } });
  });
  pager.querySelector('#page-first').addEventListener('click', () => {
    navigate({ ...state, page_token: '' }, { historyState: { tokens: [] } });
  });
}

// ---------------------------------------------------------------------------------------
// Wiring

function isPlainClick(event) {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

function onLinkClick(event) {
  const link = event.target.closest('a[href]');
  if (!link || !isPlainClick(event)) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname !== '/' || link.hasAttribute('download')) return;
  event.preventDefault();
  navigate(parseState(url.search));
  window.scrollTo(0, 0);
  $('page-title').focus();
}

function init() {
  setupCharts();
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('controls').addEventListener('submit', (event) => {
    event.preventDefault();
    onControlsChange();
  });
  $('controls').addEventListener('change', onControlsChange);
  $('reset').addEventListener('click', () => {
    const base = defaults();
    navigate({ ...base, page: state.page });
  });
  $('csv-download').addEventListener('click', (event) => downloadCsv(event.currentTarget));
  $('content').addEventListener('click', (event) => {
    const button = event.target.closest('button.csv-button');
    if (button) downloadCsv(button);
  });
  $('site-nav').addEventListener('click', onLinkClick);
  $('content').addEventListener('click', onLinkClick);
  $('brand-link').addEventListener('click', onLinkClick);
  $('page-title').setAttribute('tabindex', '-1');
  window.addEventListener('popstate', () => {
    state = parseState(location.search);
    render();
  });
  // Write the defaults into the URL so the first view is already shareable.
  history.replaceState(history.state, '', stateToSearch(state));
  if (getKey()) {
    render();
  } else {
    showSignIn();
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
