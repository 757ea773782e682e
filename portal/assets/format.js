// Locale-aware formatting of numbers, shares, durations and bucket dates.

const cache = new Map();

function numberFormat(options) {
  const key = JSON.stringify(options);
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat(undefined, options));
  return cache.get(key);
}

export function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A count: 12,345. */
export function formatInteger(value) {
  return isNumber(value) ? numberFormat({ maximumFractionDigits: 0 }).format(value) : '–';
}

/** A plain number with up to `digits` decimals. */
export function formatNumber(value, digits = 1) {
  return isNumber(value) ? numberFormat({ maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(value) : '–';
}

/** A signed number: +1.2 / −0.4. */
export function formatSigned(value, digits = 1) {
  return isNumber(value)
    ? numberFormat({ maximumFractionDigits: digits, minimumFractionDigits: digits, signDisplay: 'exceptZero' }).format(value)
    : '–';
}

/** A number with exactly `digits` decimals: 37.0. */
export function formatFixed(value, digits = 1) {
  return isNumber(value) ? numberFormat({ maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value) : '–';
}

/** A share given in percent (0..100), with exactly `digits` decimals: 73.3 %. */
export function formatPercent(value, digits = 1) {
  return isNumber(value)
    ? numberFormat({ style: 'percent', maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value / 100)
    : '–';
}

const UNITS = [
  ['d', 86400],
  ['h', 3600],
  ['min', 60],
  ['s', 1],
];

/** The locale's minus sign, so negative durations read like the other negative numbers. */
function minusSign() {
  const part = numberFormat({}).formatToParts(-1).find((p) => p.type === 'minusSign');
  return part ? part.value : '-';
}

/** Seconds as "2 h 5 min": the two largest units. */
export function formatDuration(seconds) {
  if (!isNumber(seconds)) return '–';
  const sign = seconds < 0 ? minusSign() : '';
  let rest = Math.round(Math.abs(seconds));
  if (rest === 0) return '0 s';
  const parts = [];
  for (const [unit, size] of UNITS) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      rest -= n * size;
      parts.push(`${formatInteger(n)} ${unit}`);
    } else if (parts.length) {
      // Keep the two units adjacent: "1 h 0 min" reads better than "1 h 12 s".
      parts.push(null);
    }
    if (parts.length === 2) break;
  }
  return sign + parts.filter(Boolean).join(' ');
}

/** A signed duration: "+3 min 4 s". */
export function formatSignedDuration(seconds) {
  if (!isNumber(seconds)) return '–';
  if (Math.round(seconds) === 0) return '±0 s';
  return (seconds > 0 ? '+' : '') + formatDuration(seconds);
}

function dateFormat(options) {
  const key = 'd' + JSON.stringify(options);
  if (!cache.has(key)) {
    try {
      cache.set(key, new Intl.DateTimeFormat(undefined, options));
    } catch {
      const { timeZone, ...rest } = options;
      cache.set(key, new Intl.DateTimeFormat(undefined, rest));
    }
  }
  return cache.get(key);
}

/** The label of a bucket starting at `iso` (RFC 3339 with offset) at `granularity`. */
export function formatBucket(iso, granularity, timeZone) {
  if (!iso) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const zone = timeZone || undefined;
  switch (granularity) {
    case 'year':
      return dateFormat({ year: 'numeric', timeZone: zone }).format(date);
    case 'quarter': {
      const parts = dateFormat({ year: 'numeric', month: 'numeric', timeZone: zone }).formatToParts(date);
      const month = Number(parts.find((p) => p.type === 'month').value);
      const year = parts.find((p) => p.type === 'year').value;
      return `Q${Math.floor((month - 1) / 3) + 1} ${year}`;
    }
    case 'month':
      return dateFormat({ year: 'numeric', month: 'short', timeZone: zone }).format(date);
    case 'week':
      return `Week of ${dateFormat({ year: 'numeric', month: 'short', day: 'numeric', timeZone: zone }).format(date)}`;
    default:
      return dateFormat({ year: 'numeric', month: 'short', day: 'numeric', timeZone: zone }).format(date);
  }
}

/** A date and time, in `timeZone`. */
export function formatDateTime(iso, timeZone) {
  if (!iso) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return dateFormat({ dateStyle: 'medium', timeStyle: 'short', timeZone: timeZone || undefined }).format(date);
}

/** A calendar date given as YYYY-MM-DD, for prose. */
export function formatDay(ymd) {
  if (!ymd) return '–';
  const [y, m, d] = ymd.split('-').map(Number);
  const date = new Date(Date.UTC(y, m - 1, d));
  return dateFormat({ dateStyle: 'medium', timeZone: 'UTC' }).format(date);
}
