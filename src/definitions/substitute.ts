/**
 * `${{ name }}` in commands, environment values and notify comments. Only
 * names are substituted, from a fixed list; nothing is ever evaluated.
 */
import { didYouMean } from './did-you-mean.js';
import { DEFINE_PATTERN } from './schema.js';

export const substitutionNames = [
  'sha',
  'branch',
  'event.type',
  'event.number',
  'event.author',
  'defines.<name>',
  'chunk',
  'chunks',
] as const;

const fixedNames = [
  'sha',
  'branch',
  'event.type',
  'event.number',
  'event.author',
  'chunk',
  'chunks',
];

/** A piece of a string: literal text, or a name to substitute. */
export type Segment = string | { name: string };

export type SubstitutionProblem = {
  /** Which `${{` of the string (0-based), to find it in the source. */
  occurrence: number;
  message: string;
};

export type ParsedText = {
  segments: Segment[];
  /** How many `${{` the string holds. */
  count: number;
  problems: SubstitutionProblem[];
  /** The define names it uses. */
  defines: { name: string; occurrence: number }[];
  usesChunk: { name: 'chunk' | 'chunks'; occurrence: number } | undefined;
};

/** Splits a string into text and names, and reports unknown names and unclosed `${{`. */
export function parseText(text: string): ParsedText {
  const parsed: ParsedText = {
    segments: [],
    count: 0,
    problems: [],
    defines: [],
    usesChunk: undefined,
  };
  let rest = 0;
  for (let start = text.indexOf('${{'); start >= 0; start = text.indexOf('${{', rest)) {
    const occurrence = parsed.count++;
    const end = text.indexOf('}}', start + 3);
    if (end < 0) {
      parsed.problems.push({ occurrence, message: 'unclosed "${{": write "${{ name }}"' });
      break;
    }
    if (start > rest) parsed.segments.push(text.slice(rest, start));
    rest = end + 2;
    const name = text.slice(start + 3, end).trim();
    parsed.segments.push({ name });
    if (name.startsWith('defines.') && DEFINE_PATTERN.test(name.slice('defines.'.length))) {
      parsed.defines.push({ name: name.slice('defines.'.length), occurrence });
    } else if (name === 'chunk' || name === 'chunks') {
      parsed.usesChunk ??= { name, occurrence };
    } else if (!fixedNames.includes(name)) {
      parsed.problems.push({
        occurrence,
        message: `unknown name "${name}" in \${{ }}${didYouMean(name, fixedNames)} (names: ${substitutionNames.join(', ')}; expressions are never evaluated)`,
      });
    }
  }
  if (rest < text.length) parsed.segments.push(text.slice(rest));
  return parsed;
}

/** Joins segments, taking each name's value from `value` (undefined keeps `${{ name }}` as written). */
export function render(
  segments: readonly Segment[],
  value: (name: string) => string | undefined,
): string {
  let text = '';
  for (const segment of segments) {
    text +=
      typeof segment === 'string' ? segment : (value(segment.name) ?? `\${{ ${segment.name} }}`);
  }
  return text;
}
