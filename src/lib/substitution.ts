/**
 * The `${{ name }}` syntax: splitting a string into literal text and names,
 * and joining it back with values. Shared by src/definitions/ (which checks
 * names and substitutes what an event knows) and src/graph/ (which
 * substitutes `${{ chunk }}` and `${{ chunks }}` when a range of chunks is
 * materialised at dispatch). Nothing is ever evaluated.
 */

/** A piece of a string: literal text, or a name to substitute. */
export type Segment = string | { name: string };

export type SplitText = {
  segments: Segment[];
  /** How many `${{` the string holds, an unclosed one included. */
  count: number;
  /** The last `${{` has no `}}`: it and the rest are kept as text. */
  unclosed: boolean;
};

/** Splits at every `${{ name }}`; the name is trimmed. */
export function splitText(text: string): SplitText {
  const split: SplitText = { segments: [], count: 0, unclosed: false };
  let rest = 0;
  for (let start = text.indexOf('${{'); start >= 0; start = text.indexOf('${{', rest)) {
    split.count++;
    const end = text.indexOf('}}', start + 3);
    if (end < 0) {
      split.unclosed = true;
      break;
    }
    if (start > rest) split.segments.push(text.slice(rest, start));
    rest = end + 2;
    split.segments.push({ name: text.slice(start + 3, end).trim() });
  }
  if (rest < text.length) split.segments.push(text.slice(rest));
  return split;
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

/** Substitutes the names `value` knows in `text`; the others stay as written. */
export function substitute(text: string, value: (name: string) => string | undefined): string {
  return render(splitText(text).segments, value);
}
