/**
 * Reads the `.tower/` fixtures of test/fixtures/definitions: a case is one
 * YAML file (read as `.tower/<name>`) or a folder that stands for `.tower/`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SourceFile } from '../src/definitions/index.js';

export const fixturesDir = fileURLToPath(new URL('fixtures/definitions/', import.meta.url));

function walk(dir: string, root: string): SourceFile[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory()
        ? walk(path, root)
        : [
            {
              path: `.tower/${relative(root, path).split('\\').join('/')}`,
              content: readFileSync(path, 'utf8'),
            },
          ];
    });
}

/** The files of one case of `broken/` or `valid/`. */
export function readCase(group: 'broken' | 'valid', name: string): SourceFile[] {
  const path = join(fixturesDir, group, name);
  return statSync(path).isDirectory()
    ? walk(path, path)
    : [{ path: `.tower/${name}`, content: readFileSync(path, 'utf8') }];
}

/** The names of the cases of a group. */
export function caseNames(group: 'broken' | 'valid'): string[] {
  return readdirSync(join(fixturesDir, group))
    .filter((name) => !name.startsWith('.'))
    .sort();
}
