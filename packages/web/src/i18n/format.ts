/** Times, dates, numbers and durations in the UI language (Intl), not the browser's. */
import { currentLanguage, t } from './index.ts';

const cache = new Map<string, Intl.DateTimeFormat>();
function dtf(opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const lang = currentLanguage();
  const k = lang + JSON.stringify(opts);
  let f = cache.get(k);
  if (!f) cache.set(k, (f = new Intl.DateTimeFormat(lang, opts)));
  return f;
}

function dayKey(time: number): string {
  const d = new Date(time);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
const isToday = (time: number, now: number) => dayKey(time) === dayKey(now);
const isYesterday = (time: number, now: number) => dayKey(time) === dayKey(now - 86_400_000);

/** Time of day: "14:05" / "2:05 PM" / "14:05" as the language writes it. */
export function timeOfDay(time: number): string {
  return dtf({ hour: 'numeric', minute: '2-digit' }).format(time);
}

/** A full date and time (tooltips). */
export function dateTime(time: number): string {
  return dtf({ dateStyle: 'full', timeStyle: 'short' }).format(time);
}

/** Day separators: "Today", "Yesterday", "Wed, Dec 2", "Dec 2, 2025" (今天, 昨天, 12月2日周三, 2025年12月2日). */
export function dayLabel(time: number, now = Date.now()): string {
  if (isToday(time, now)) return t('day.today');
  if (isYesterday(time, now)) return t('day.yesterday');
  const sameYear = new Date(time).getFullYear() === new Date(now).getFullYear();
  return dtf(sameYear ? { weekday: 'short', month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' }).format(time);
}

/** The day of a separator item from the SDK (`day:YYYY-MM-DD`). */
export function dayLabelOfKey(key: string, now = Date.now()): string | null {
  const m = /(\d{4})-(\d{2})-(\d{2})$/.exec(key);
  return m ? dayLabel(new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 12).getTime(), now) : null;
}

/** The list's time column: the time today, "Yesterday", else a short date. */
export function listTime(time: number, now = Date.now()): string {
  if (isToday(time, now)) return timeOfDay(time);
  if (isYesterday(time, now)) return t('day.yesterday');
  return dtf({ month: 'short', day: 'numeric' }).format(time);
}

export function count(n: number): string {
  return new Intl.NumberFormat(currentLanguage()).format(n);
}

/** A duration as people say it: "12 minutes", "3 hours", "2 days" (12分钟, 3小时, 2天). */
export function duration(ms: number): string {
  const min = Math.max(1, Math.round(ms / 60_000));
  const [value, unit] = min < 90 ? [min, 'minute'] : min < 48 * 60 ? [Math.round(min / 60), 'hour'] : [Math.round(min / 1440), 'day'];
  return new Intl.NumberFormat(currentLanguage(), { style: 'unit', unit, unitDisplay: 'long' }).format(value);
}
