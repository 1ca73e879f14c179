/**
 * Checks cron schedules (five fields: minute, hour, day of month, month,
 * day of week), so that a schedule that would never fire is an error in the
 * definitions rather than a silent nightly that never comes.
 */

const fields = [
  { name: 'minute', min: 0, max: 59, names: [] },
  { name: 'hour', min: 0, max: 23, names: [] },
  { name: 'day of month', min: 1, max: 31, names: [] },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  // 0 and 7 are both Sunday.
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] satisfies { name: string; min: number; max: number; names: string[] }[];

export const cronMacros = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly'];

/** Why a cron expression is not valid, or undefined when it is. */
export function cronProblem(expression: string): string | undefined {
  const trimmed = expression.trim();
  if (trimmed.startsWith('@')) {
    return cronMacros.includes(trimmed)
      ? undefined
      : `unknown schedule ${trimmed} (use ${cronMacros.join(', ')} or five fields)`;
  }
  const parts = trimmed.split(/\s+/);
  if (parts.length !== 5) {
    return `a schedule has five fields (minute hour day-of-month month day-of-week), not ${parts.length}`;
  }
  for (const [i, field] of fields.entries()) {
    for (const item of parts[i]!.split(',')) {
      const problem = itemProblem(item, field);
      if (problem) return `${field.name} "${parts[i]}": ${problem}`;
    }
  }
  return undefined;
}

function itemProblem(item: string, field: (typeof fields)[number]): string | undefined {
  const [range = '', step, extra] = item.split('/');
  if (extra !== undefined || (step !== undefined && !/^[1-9]\d*$/.test(step)))
    return 'a step is a positive number';
  if (range === '*') return undefined;
  const bounds = range.split('-');
  if (bounds.length > 2) return `"${item}" is not a number, a range or *`;
  const values: number[] = [];
  for (const bound of bounds) {
    const named = field.names.indexOf(bound.toLowerCase());
    const value = named >= 0 ? named + field.min : /^\d+$/.test(bound) ? Number(bound) : undefined;
    if (value === undefined) return `"${item}" is not a number, a range or *`;
    if (value < field.min || value > field.max)
      return `${value} is outside ${field.min}-${field.max}`;
    values.push(value);
  }
  if (values.length === 2 && values[0]! > values[1]!) return `the range ${range} is backwards`;
  return undefined;
}
