// Talking to the cxmetrics HTTP API: the key in sessionStorage, the bearer header,
// problem+json errors, and CSV downloads.

const KEY_NAME = 'cxmetrics.apiKey';

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_NAME);
  } catch {
    return null;
  }
}

export function setKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function clearKey() {
  try {
    sessionStorage.removeItem(KEY_NAME);
  } catch {
    // Storage may be unavailable; nothing to clear then.
  }
}

/** An error answer of the API, carrying the RFC 9457 problem's fields. */
export class ApiError extends Error {
  constructor(status, problem) {
    const text = (problem && (problem.detail || problem.title)) || `The server answered ${status}.`;
    super(text);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem || null;
  }
}

/**
 * Builds an API path with query parameters. `params` maps names to a string, a number,
 * a boolean, or an array (a repeated parameter); empty values are left out.
 */
export function apiUrl(path, params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      for (const v of value) {
        if (v !== '') search.append(name, String(v));
      }
    } else {
      search.append(name, String(value));
    }
  }
  const qs = search.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Retries of a request the service shed under load (429, or 503 with Retry-After). */
const MAX_RETRIES = 3;
/** The longest wait before a retry, whatever Retry-After says. */
const MAX_RETRY_WAIT_S = 5;

/** The seconds to wait before retrying `response`, or null when it is not to be retried. */
function retryDelay(response, retries) {
  const after = Number(response.headers.get('Retry-After'));
  const shed = response.status === 429 || (response.status === 503 && after > 0);
  if (!shed || retries >= MAX_RETRIES) return null;
  return Math.min(Math.max(after, 1), MAX_RETRY_WAIT_S);
}

function sleep(seconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('Aborted', 'AbortError'));
    }, { once: true });
  });
}

async function request(url, { key, signal, accept } = {}) {
  const token = key || getKey();
  const headers = { Accept: accept || 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  for (let retries = 0; ; retries += 1) {
    try {
      response = await fetch(url, { headers, signal, cache: 'no-store' });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError(0, { title: 'Network error', detail: 'The server could not be reached. Check your connection and try again.' });
    }
    // A dashboard asks several queries at once; a busy service sheds some and says when
    // to come back, so the page waits and asks again before it shows an error.
    const delay = retryDelay(response, retries);
    if (delay === null) break;
    await sleep(delay, signal);
  }
  if (!response.ok) {
    let problem = null;
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      try {
        problem = await response.json();
      } catch {
        problem = null;
      }
    }
    if (!problem) {
      problem = { title: response.statusText || `HTTP ${response.status}` };
    }
    if (response.status === 429) {
      const retry = response.headers.get('Retry-After');
      if (retry && problem.detail) problem.detail += ` (retry in ${retry} s)`;
    }
    throw new ApiError(response.status, problem);
  }
  return response;
}

/** GETs a JSON answer. */
export async function getJson(url, options) {
  const response = await request(url, options);
  return response.json();
}

/** GETs a CSV answer as a Blob. */
export async function getCsv(url, options) {
  const response = await request(url, { ...options, accept: 'text/csv' });
  return response.blob();
}

/** Saves a Blob as a file through a temporary link. */
export function saveBlob(blob, filename) {
  const href = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = href;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}
