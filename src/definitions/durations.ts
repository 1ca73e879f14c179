/**
 * Durations in definitions: `90s`, `20m`, `2h`, `1d`, combinations such as
 * `1h30m` (largest unit first), or a whole number of seconds.
 */

export const DURATION_PATTERN = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** A year: longer is surely a mistake, and it keeps the arithmetic exact. */
export const MAX_DURATION_SECONDS = 365 * 86_400;

export const durationHint = 'a duration such as 90s, 20m, 2h, 1d or 1h30m, or whole seconds';

/** Seconds in a duration, or undefined when it is not one. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  const match = DURATION_PATTERN.exec(value);
  if (!match || value === '') return undefined;
  const [, d = '0', h = '0', m = '0', s = '0'] = match;
  return ((Number(d) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s);
}
