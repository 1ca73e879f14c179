/**
 * Turns zod issues into diagnostics at the right node: a wrong value at the
 * value, an unknown key at the key (with a suggestion among the keys valid
 * there), a missing key at the object that lacks it. Unions report the
 * issues of the one branch the value's type selects, so that a typo deep
 * inside `needs` is reported there, not as "invalid input" on `needs`.
 */
import { z } from 'zod';
import { diagnostic, type Diagnostic } from './diagnostics.js';
import { didYouMean } from './did-you-mean.js';
import type { Locator, Path } from './positions.js';

/** How a value looks in a message. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  // Numbers and booleans: YAML data holds nothing else.
  return JSON.stringify(value);
}

const expectedNames: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** Messages for the issues whose schema sets none. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    return `expected ${expectedNames[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
  }
  if (issue.code === 'invalid_value') {
    const values = issue.values.map(String);
    return `${describeValue(issue.input)} is not one of ${values.join(', ')}${didYouMean(String(issue.input), values)}`;
  }
  if (issue.code === 'too_small') {
    if (issue.origin === 'array') return `list at least ${String(issue.minimum)}`;
    if (issue.origin === 'string') return 'must not be empty';
    return `must be at least ${String(issue.minimum)}`;
  }
  if (issue.code === 'too_big') return `must be at most ${String(issue.maximum)}`;
  return undefined;
};

type Keyed = { path: Path; at: 'key' | 'value'; message: string };

function valueAt(data: unknown, path: Path): unknown {
  let current = data;
  for (const segment of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, segment))
      return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

/** The object schemas a path can lead to (several through a union). */
function objectsAt(schema: z.ZodType, path: Path, data: unknown, depth = 0): z.ZodObject[] {
  if (schema instanceof z.ZodOptional)
    return objectsAt(schema.unwrap() as z.ZodType, path, data, depth);
  if (schema instanceof z.ZodDiscriminatedUnion) {
    // Only the option the discriminator selects, so suggestions fit the value.
    const key = schema.def.discriminator;
    const value = valueAt(data, [...path.slice(0, depth), key]);
    const options = (schema.options as z.ZodType[]).filter(
      (option) =>
        option instanceof z.ZodObject && (option.shape[key] as z.ZodType).safeParse(value).success,
    );
    return options.flatMap((option) => objectsAt(option, path, data, depth));
  }
  if (schema instanceof z.ZodUnion) {
    return (schema.options as z.ZodType[]).flatMap((option) =>
      objectsAt(option, path, data, depth),
    );
  }
  if (depth === path.length) return schema instanceof z.ZodObject ? [schema] : [];
  const segment = path[depth]!;
  if (schema instanceof z.ZodObject) {
    const shape = schema.shape as Record<string, z.ZodType>;
    const key = String(segment);
    return Object.hasOwn(shape, key) ? objectsAt(shape[key]!, path, data, depth + 1) : [];
  }
  if (schema instanceof z.ZodRecord)
    return objectsAt(schema.valueType as z.ZodType, path, data, depth + 1);
  if (schema instanceof z.ZodArray)
    return objectsAt(schema.element as z.ZodType, path, data, depth + 1);
  return [];
}

function collect(
  issue: z.core.$ZodIssue,
  base: Path,
  schema: z.ZodType,
  data: unknown,
  out: Keyed[],
): void {
  const path = [...base, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))];
  if (issue.code === 'invalid_union') {
    if (issue.errors.length === 0 && issue.discriminator !== undefined) {
      const value = valueAt(data, path);
      const options = ('options' in issue ? (issue.options ?? []) : []).map(String);
      out.push({
        path,
        at: 'value',
        message:
          value === undefined
            ? `missing required key "${issue.discriminator}" (one of ${options.join(', ')})`
            : `${describeValue(value)} is not one of ${options.join(', ')}${didYouMean(typeof value === 'string' ? value : '', options)}`,
      });
      return;
    }
    // The one branch the value fits best has the real issues: first a branch
    // that accepted the value itself and failed only inside it, then one
    // whose type at least matches.
    const inside = issue.errors.filter((errors) => errors.every((e) => e.path.length > 0));
    const typed = issue.errors.filter(
      (errors) => !errors.some((e) => e.code === 'invalid_type' && e.path.length === 0),
    );
    const fitting = inside.length === 1 ? inside : typed;
    if (fitting.length === 1) {
      for (const nested of fitting[0]!) collect(nested, path, schema, data, out);
    } else {
      out.push({ path, at: 'value', message: issue.message });
    }
  } else if (issue.code === 'invalid_key') {
    out.push({ path, at: 'key', message: issue.issues[0]?.message ?? issue.message });
  } else if (issue.code === 'unrecognized_keys') {
    const valid = [
      ...new Set(objectsAt(schema, path, data).flatMap((o) => Object.keys(o.shape))),
    ].sort();
    for (const key of issue.keys) {
      const suggestion = didYouMean(key, valid);
      const hint =
        suggestion ||
        // The one key a template lacks, next to a long list of job keys: say why.
        (key === 'use' && path[0] === 'templates'
          ? ': a template cannot use another template'
          : '') ||
        (valid.length <= 8 ? `; expected one of ${valid.join(', ')}` : '');
      out.push({ path: [...path, key], at: 'key', message: `unknown key "${key}"${hint}` });
    }
  } else if (
    issue.code === 'invalid_type' &&
    valueAt(data, path) === undefined &&
    typeof path[path.length - 1] === 'string'
  ) {
    out.push({
      path,
      at: 'value',
      message: `missing required key "${String(path[path.length - 1])}"`,
    });
  } else {
    out.push({ path, at: 'value', message: issue.message });
  }
}

/**
 * Checks data against a schema and reports every issue at its node.
 * Returns the parsed value when there is none.
 */
export function check<T>(
  schema: z.ZodType<T>,
  data: unknown,
  locator: Locator,
  base: Path = [],
): { value: T | undefined; diagnostics: Diagnostic[] } {
  const result = schema.safeParse(data, { error: errorMap });
  if (result.success) return { value: result.data, diagnostics: [] };
  const keyed: Keyed[] = [];
  for (const issue of result.error.issues) collect(issue, [], schema, data, keyed);
  return {
    value: undefined,
    diagnostics: keyed.map((k) => {
      const path = [...base, ...k.path];
      return diagnostic(
        'error',
        k.at === 'key' ? locator.key(path) : locator.value(path),
        k.message,
      );
    }),
  };
}

/** Parses without reporting: for pieces already reported by a check of the whole file. */
export function parseQuietly<T>(schema: z.ZodType<T>, data: unknown): T | undefined {
  const result = schema.safeParse(data);
  return result.success ? result.data : undefined;
}

/**
 * Like parseQuietly, but drops unknown keys (already reported) rather than
 * losing the whole piece, so that the rest of it is still checked.
 * `stripped` says whether it had to.
 */
export function parseLeniently<T>(
  schema: z.ZodType<T>,
  data: unknown,
): { value: T; stripped: boolean } | undefined {
  const result = schema.safeParse(data);
  if (result.success) return { value: result.data, stripped: false };
  const unknown = new Set(
    result.error.issues.flatMap((i) =>
      i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys : [],
    ),
  );
  if (unknown.size === 0 || typeof data !== 'object' || data === null) return undefined;
  const value = parseQuietly(
    schema,
    Object.fromEntries(Object.entries(data).filter(([key]) => !unknown.has(key))),
  );
  return value === undefined ? undefined : { value, stripped: true };
}
