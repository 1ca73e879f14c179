/**
 * Glob patterns: path filters (`changed`), artifacts and branch patterns.
 * Matching uses picomatch; a pattern picomatch cannot compile, or one that
 * could never match a repository path, is an error in the definitions.
 */
import picomatch from 'picomatch';

const options = { dot: true, strictBrackets: true } satisfies picomatch.PicomatchOptions;

/** picomatch's regular expression for a pattern that can match nothing. */
const NEVER = String(/$^/);

function compileProblem(pattern: string): string | undefined {
  try {
    if (String(picomatch.makeRe(pattern, options)) === NEVER)
      return `the pattern "${pattern}" can never match`;
  } catch (error) {
    return `the pattern "${pattern}" is not a valid glob: ${(error as Error).message}`;
  }
  return undefined;
}

/**
 * Why a repository path glob is not usable, or undefined. A leading `!`
 * excludes what the rest matches.
 */
export function pathGlobProblem(pattern: string): string | undefined {
  const body = pattern.startsWith('!') ? pattern.slice(1) : pattern;
  if (body.trim() === '') return 'a pattern must not be empty';
  if (body.startsWith('/')) {
    return `the pattern "${pattern}" is absolute; paths are relative to the repository root`;
  }
  if (body.split('/').includes('..')) {
    return `the pattern "${pattern}" leaves the repository with ".."`;
  }
  return compileProblem(body);
}

/** Why a branch pattern is not usable, or undefined. */
export function branchPatternProblem(pattern: string): string | undefined {
  if (pattern.trim() === '') return 'a branch pattern must not be empty';
  return compileProblem(pattern);
}

/** True when a branch pattern has glob characters (and is not an exact branch name). */
export function isGlob(pattern: string): boolean {
  return picomatch.scan(pattern).isGlob;
}

export type Matcher = (value: string) => boolean;

export function compileGlob(pattern: string): Matcher {
  return picomatch(pattern, options);
}

/**
 * A path filter: does any of these changed files concern the job? A file
 * counts when it matches some pattern and no `!` pattern; with only `!`
 * patterns, every other file counts.
 */
export function compilePathFilter(
  patterns: readonly string[],
): (files: readonly string[]) => boolean {
  const include = patterns.filter((p) => !p.startsWith('!')).map(compileGlob);
  const exclude = patterns.filter((p) => p.startsWith('!')).map((p) => compileGlob(p.slice(1)));
  return (files) =>
    files.some(
      (file) =>
        (include.length === 0 || include.some((m) => m(file))) && !exclude.some((m) => m(file)),
    );
}
