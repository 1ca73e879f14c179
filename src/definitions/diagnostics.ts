/**
 * Diagnostics: every mistake in `.tower/` comes back as data with the file,
 * line and column of the node at fault and its path in the document, never
 * as an exception.
 */

/** A file of the repository, read at the commit being tested. */
export type SourceFile = {
  /** Relative to the repository root, with `/` separators: `.tower/ci.yml`. */
  path: string;
  content: string;
  /**
   * Its size in bytes as the tree lists it, when the content was left
   * unread (over the limits of src/definitions/limits.ts); else the
   * content's length counts.
   */
  size?: number;
};

export type Severity = 'error' | 'warning';

export type Diagnostic = {
  severity: Severity;
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** Where in the document: `graphs.per-checkin.jobs.test.needs.build`, `schedulers[0].graph`. */
  path: string;
  message: string;
};

/** A place in the definitions that a diagnostic can point at. */
export type Where = { file: string; line: number; column: number; path: string };

export function diagnostic(severity: Severity, where: Where, message: string): Diagnostic {
  return {
    severity,
    file: where.file,
    line: where.line,
    column: where.column,
    path: where.path,
    message,
  };
}

/** `file:line:col: error: message`, as compilers print them. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.message}`;
}

/** `file:line:col`, to name another place in a message. */
export function formatWhere(where: Where): string {
  return `${where.file}:${where.line}:${where.column}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
export function compare<T extends string | number>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorted by file, line and column, without repeats: a template used by many
 * jobs, or a graph included by many graphs, reports each mistake once.
 */
export function tidyDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const unique = diagnostics.filter((d) => {
    const key = `${d.severity}\0${d.file}\0${d.line}\0${d.column}\0${d.path}\0${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.sort(
    (a, b) =>
      compare(a.file, b.file) ||
      compare(a.line, b.line) ||
      compare(a.column, b.column) ||
      compare(a.severity, b.severity) ||
      compare(a.message, b.message),
  );
}

/** A path as shown in diagnostics: keys joined with dots, list indices in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text;
}
