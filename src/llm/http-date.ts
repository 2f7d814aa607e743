// The three HTTP-date forms a recipient must accept (RFC 9110, section 5.6.7), all in GMT.
// `Date.parse` is not used: V8 also reads "1" as 2001-01-01, and reads the asctime form in
// the host's time zone.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC_850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
// Sun Nov  6 08:49:37 1994
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/** Milliseconds since the epoch of an HTTP-date, or `undefined` if `value` is not one. */
export function parseHttpDate(value: string): number | undefined {
  const trimmed = value.trim();
  let m = IMF_FIXDATE.exec(trimmed);
  if (m) return utc(Number(m[3]), m[2], Number(m[1]), m.slice(4, 7));
  m = RFC_850.exec(trimmed);
  if (m) return utc(fullYear(Number(m[3])), m[2], Number(m[1]), m.slice(4, 7));
  m = ASCTIME.exec(trimmed);
  if (m) return utc(Number(m[6]), m[1], Number(m[2]), m.slice(3, 6));
  return undefined;
}

// RFC 9110 reads a two-digit year that would be more than 50 years ahead as the century before.
function fullYear(yy: number): number {
  const thisYear = new Date().getUTCFullYear();
  const year = Math.floor(thisYear / 100) * 100 + yy;
  return year > thisYear + 50 ? year - 100 : year;
}

function utc(year: number, month: string | undefined, day: number, clock: string[]) {
  const monthIndex = MONTHS.indexOf(month ?? '');
  const [hours, minutes, seconds] = clock.map(Number) as [number, number, number];
  if (monthIndex < 0 || hours > 23 || minutes > 59 || seconds > 60) return undefined;
  // Date.UTC rolls 31 Feb over into March: a day the month does not have is no date.
  if (new Date(Date.UTC(year, monthIndex, day)).getUTCDate() !== day) return undefined;
  // A leap second (60) rolls into the next minute, which is what it means.
  return Date.UTC(year, monthIndex, day, hours, minutes, seconds);
}
