// The view's state and its URL: every choice is a query parameter, so a URL restores the
// exact view (see portal/README.md for the format).

export const PAGES = {
  overview: 'Overview',
  nps: 'NPS',
  csat: 'CSAT',
  ces: 'CES',
  'response-times': 'Response times',
  retention: 'Retention',
  'comment-themes': 'Comment themes',
  responses: 'Responses',
  interactions: 'Interactions',
};

export const GRANULARITIES = ['none', 'day', 'week', 'month', 'quarter', 'year'];
export const GROUPS = ['', 'survey', 'channel', 'agent', 'team'];
export const KINDS = ['', 'nps', 'csat', 'ces'];

/** The parameters, in the order they are written to the URL. */
const KEYS = ['page', 'start', 'end', 'tz', 'granularity', 'group_by', 'survey', 'channel', 'agent', 'team', 'frt', 'rt', 'calendar', 'kind', 'comment_query', 'max_themes', 'periods', 'nps_category', 'page_token'];

export const DEFAULT_FRT_MINUTES = 60;
export const DEFAULT_PERIODS = 12;
export const DEFAULT_MAX_THEMES = 20;

export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function ymd(date) {
  const m = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${date.getFullYear()}-${m}-${d}`;
}

/** The last 12 full calendar months: the first of this month, a year back, to the first of this month. */
export function defaultRange(now = new Date()) {
  const end = new Date(now.getFullYear(), now.getMonth(), 1);
  const start = new Date(now.getFullYear() - 1, now.getMonth(), 1);
  return { start: ymd(start), end: ymd(end) };
}

export function defaults() {
  const { start, end } = defaultRange();
  return {
    page: 'overview',
    start,
    end,
    tz: browserTimeZone(),
    granularity: 'month',
    group_by: '',
    survey: '',
    channel: '',
    agent: '',
    team: '',
    frt: String(DEFAULT_FRT_MINUTES),
    rt: '',
    calendar: '',
    kind: '',
    comment_query: '',
    max_themes: '',
    periods: '',
    nps_category: '',
    page_token: '',
  };
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Reads the state from a query string, falling back to the defaults for anything missing or malformed. */
export function parseState(search) {
  const params = new URLSearchParams(search);
  const state = defaults();
  for (const key of KEYS) {
    const value = params.get(key);
    if (value !== null) state[key] = value.trim();
  }
  const base = defaults();
  if (!(state.page in PAGES)) state.page = base.page;
  if (!DATE.test(state.start)) state.start = base.start;
  if (!DATE.test(state.end)) state.end = base.end;
  if (!GRANULARITIES.includes(state.granularity)) state.granularity = base.granularity;
  if (!GROUPS.includes(state.group_by)) state.group_by = '';
  if (!KINDS.includes(state.kind)) state.kind = '';
  if (!state.tz) state.tz = base.tz;
  if (state.nps_category !== 'true') state.nps_category = '';
  return state;
}

/** The query string of a state: the range, zone, granularity and SLA target always (so a shared link keeps its dates), the rest when set. */
export function stateToSearch(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) {
    const value = state[key];
    // `frt` has a default, so an emptied target must be written (as `frt=`) to stick.
    const always = key === 'page' || key === 'start' || key === 'end' || key === 'tz' || key === 'granularity' || key === 'frt';
    if (always || (value !== undefined && value !== null && value !== '')) params.set(key, value ?? '');
  }
  return `?${params.toString()}`;
}

/** A comma-separated filter as a list. */
export function splitList(value) {
  return (value || '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

/** Minutes (as typed) to seconds for the API, or undefined. */
export function minutesToSeconds(value) {
  const n = Number(value);
  return value !== '' && Number.isFinite(n) && n > 0 ? Math.round(n * 60 * 1000) / 1000 : undefined;
}

/** The previous range of the same length in days, just before `start`. */
export function previousRange(start, end) {
  const s = new Date(`${start}T00:00:00Z`);
  const e = new Date(`${end}T00:00:00Z`);
  const days = Math.round((e - s) / 86400000);
  const p = new Date(s.getTime() - days * 86400000);
  const iso = (d) => d.toISOString().slice(0, 10);
  return { start: iso(p), end: start };
}
