/**
 * Money as text: amounts are integers in fen (1/100 yuan). Parsing and formatting use only
 * integer and string operations, never floating point, so "0.29" is 29 fen exactly.
 */

const YUAN = /^(\d{1,13})(?:\.(\d{0,2}))?$/;

/**
 * Fen of a yuan amount typed by a user ("12", "12.5", "12.50", "0.01"; surrounding spaces and a
 * leading "¥" are allowed); null for anything else (more than two decimals, signs, exponents,
 * several dots, more than 13 integer digits).
 */
export function parseYuan(text: string): number | null {
  const m = YUAN.exec(text.trim().replace(/^[¥￥]\s*/, ''));
  if (!m) return null;
  const whole = m[1]!;
  const frac = (m[2] ?? '').padEnd(2, '0');
  const fen = Number(whole) * 100 + Number(frac);
  return Number.isSafeInteger(fen) ? fen : null;
}

/** "12.50" for 1250 fen; negative amounts get a leading "-". */
export function formatYuan(fen: number): string {
  if (!Number.isSafeInteger(fen)) throw new RangeError(`not an integer amount of fen: ${fen}`);
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  const cents = String(abs % 100).padStart(2, '0');
  return `${sign}${Math.trunc(abs / 100)}.${cents}`;
}
