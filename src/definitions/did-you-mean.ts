/**
 * Suggestions for misspelt names: keys, job labels, templates, graphs,
 * defines, event types and results.
 */

/**
 * Optimal string alignment distance: Levenshtein plus adjacent
 * transpositions, so that "kidn" is one edit away from "kind".
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  // Three rows suffice: the transposition looks back two rows.
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, before[j - 2]! + 1);
      }
      current[j] = best;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}

/**
 * The candidate nearest to `word`, if it is near enough to be a likely typo:
 * one edit for short words, two for longer ones, ignoring case. Ties go to
 * the earliest candidate, so callers pass candidates in a stable order.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  const limit = word.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    // A one-letter name is one edit from every other: no suggestion then.
    if (distance <= limit && distance < word.length && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "x"?` to append to a message, or nothing. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const suggestion = closest(word, candidates);
  return suggestion === undefined ? '' : `; did you mean "${suggestion}"?`;
}

/** Suggestions one load or one graph build makes at most: each compares a name with every candidate. */
export const MAX_SUGGESTIONS = 50;

/**
 * didYouMean for the first `limit` calls, then nothing: definitions full of
 * unknown names (thousands of needs, each compared with thousands of labels)
 * still get every error, but not a suggestion for each. The candidates come
 * as a function, so that they are not listed once the suggestions ran out.
 */
export function limitedSuggestions(
  limit = MAX_SUGGESTIONS,
): (word: string, candidates: () => Iterable<string>) => string {
  let left = limit;
  return (word, candidates) => {
    if (left <= 0) return '';
    left--;
    return didYouMean(word, candidates());
  };
}
