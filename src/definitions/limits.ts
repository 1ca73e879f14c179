/**
 * Limits on `.tower/` as a whole, checked on the listing (paths and sizes)
 * before any file is read or parsed: definitions past them are a mistake or
 * an attack, and reading them would cost one API request per file and
 * seconds of parsing per megabyte.
 */
import { diagnostic, type Diagnostic } from './diagnostics.js';

/** YAML files under `.tower/`, at most. */
export const MAX_DEFINITION_FILES = 100;
/** Bytes of all of them together, at most. */
export const MAX_DEFINITIONS_BYTES = 1024 * 1024;
/** Bytes of one file, at most. */
export const MAX_DEFINITION_FILE_BYTES = 256 * 1024;

/** A file as the tree lists it: its path and its size in bytes. */
export type ListedFile = { path: string; size: number };

const kib = (bytes: number) => `${Math.ceil(bytes / 1024)} KiB`;

/** What is over the limits, as errors at the offending file (empty: the files may be read). */
export function definitionLimitErrors(files: readonly ListedFile[]): Diagnostic[] {
  const errors: Diagnostic[] = [];
  const at = (file: string) => ({ file, line: 1, column: 1, path: '' });
  const first = files[0]?.path ?? '.tower';
  if (files.length > MAX_DEFINITION_FILES) {
    errors.push(
      diagnostic(
        'error',
        at(first),
        `.tower/ holds ${files.length} YAML files, more than the limit of ${MAX_DEFINITION_FILES}: merge them`,
      ),
    );
  }
  let total = 0;
  for (const file of files) {
    total += file.size;
    if (file.size > MAX_DEFINITION_FILE_BYTES) {
      errors.push(
        diagnostic(
          'error',
          at(file.path),
          `this file is ${kib(file.size)}, more than the limit of ${kib(MAX_DEFINITION_FILE_BYTES)} for one file: use templates and chunks, or split it`,
        ),
      );
    }
  }
  if (total > MAX_DEFINITIONS_BYTES) {
    errors.push(
      diagnostic(
        'error',
        at(first),
        `.tower/ holds ${kib(total)} of YAML, more than the limit of ${kib(MAX_DEFINITIONS_BYTES)}: use templates and chunks`,
      ),
    );
  }
  return errors;
}
