/**
 * `${{ name }}` in commands, environment values and notify comments. Only
 * names are substituted, from a fixed list; nothing is ever evaluated. The
 * syntax itself (splitting and joining) is src/lib/substitution.ts, which the
 * scheduler's range chunks use too.
 */
import { splitText, type Segment } from '../lib/substitution.js';
import { didYouMean } from './did-you-mean.js';
import { DEFINE_PATTERN } from './schema.js';

export { render, type Segment } from '../lib/substitution.js';

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
  const { segments, count, unclosed } = splitText(text);
  const parsed: ParsedText = { segments, count, problems: [], defines: [], usesChunk: undefined };
  let occurrence = 0;
  for (const segment of segments) {
    if (typeof segment === 'string') continue;
    const { name } = segment;
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
    occurrence++;
  }
  // The unclosed `${{` is the last one: every name before it was closed.
  if (unclosed) {
    parsed.problems.push({ occurrence: count - 1, message: 'unclosed "${{": write "${{ name }}"' });
  }
  return parsed;
}
