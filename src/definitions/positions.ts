/**
 * YAML with positions: parses a file with a LineCounter and indexes every
 * node by its path once, so that diagnostics find line and column with one
 * map lookup instead of walking the document for each message.
 */
import {
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Alias,
} from 'yaml';
import {
  diagnostic,
  formatPath,
  hasErrors,
  type Diagnostic,
  type SourceFile,
  type Where,
} from './diagnostics.js';

export type Path = readonly (string | number)[];

/** Aliases one file may hold: enough to share a few blocks, too few to make parsing slow. */
export const MAX_ALIASES = 100;

/** Offsets in the source of a node and of the key that names it. */
type Entry = { key: number | undefined; value: [number, number] | undefined };

/** Finds where a path of the document is written. */
export class Locator {
  constructor(
    readonly file: string,
    private readonly content: string,
    private readonly lineCounter: LineCounter,
    private readonly entries: Map<string, Entry>,
  ) {}

  private at(offset: number, path: Path): Where {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, column: col, path: formatPath(path) };
  }

  /**
   * The nearest written ancestor of a path that is not in the document (a
   * missing key): its key when it has one, so that "missing command" points
   * at the job's label.
   */
  private ancestor(path: Path): Where {
    for (let n = path.length - 1; n >= 0; n--) {
      const entry = this.entries.get(pathKey(path.slice(0, n)));
      const offset = entry?.key ?? entry?.value?.[0];
      if (offset !== undefined) return this.at(offset, path);
    }
    return this.at(0, path);
  }

  /** The value at a path (its key when the value is empty). */
  value(path: Path): Where {
    const entry = this.entries.get(pathKey(path));
    const offset = entry?.value?.[0] ?? entry?.key;
    return offset === undefined ? this.ancestor(path) : this.at(offset, path);
  }

  /** The key that names the value at a path (the value itself in a list). */
  key(path: Path): Where {
    const entry = this.entries.get(pathKey(path));
    const offset = entry?.key ?? entry?.value?.[0];
    return offset === undefined ? this.ancestor(path) : this.at(offset, path);
  }

  /**
   * The `occurrence`-th `needle` inside the string at a path, for a mistake
   * inside a string. Escapes or folding can make the written text differ
   * from the value; then the string itself is the best place to point at.
   */
  inString(path: Path, needle: string, occurrence: number, count: number): Where {
    const range = this.entries.get(pathKey(path))?.value;
    if (range) {
      const text = this.content.slice(range[0], range[1]);
      const offsets: number[] = [];
      for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length))
        offsets.push(i);
      const offset = offsets[occurrence];
      if (offsets.length === count && offset !== undefined) return this.at(range[0] + offset, path);
    }
    return this.value(path);
  }
}

function pathKey(path: Path): string {
  return path.join('\0');
}

function index(
  node: unknown,
  key: string,
  keyOffset: number | undefined,
  entries: Map<string, Entry>,
): void {
  // An empty value (`build:` with nothing after it) has no place of its own.
  const empty =
    !isNode(node) || (isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1]);
  const range = empty ? undefined : node.range;
  entries.set(key, { key: keyOffset, value: range ? [range[0], range[1]] : undefined });
  const prefix = key === '' ? '' : `${key}\0`;
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = pair.key;
      const name = isScalar(k) ? String(k.value) : String(k);
      index(pair.value, `${prefix}${name}`, isNode(k) ? k.range?.[0] : undefined, entries);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => index(item, `${prefix}${i}`, undefined, entries));
  }
  // Aliases are not followed: a mistake inside aliased content points at the alias.
}

export type ParsedYaml = {
  /** The document as plain data; undefined when the file cannot be read at all. */
  data: unknown;
  diagnostics: Diagnostic[];
  locator: Locator;
};

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!;
}

/** Parses one YAML file; syntax errors come back as diagnostics at their position. */
export function parseYaml(file: SourceFile): ParsedYaml {
  const lineCounter = new LineCounter();
  // Keys are checked for duplicates below, with a set: yaml's own check is quadratic in a map's size.
  const doc = parseDocument(file.content, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const entries = new Map<string, Entry>();
  const locator = new Locator(file.path, file.content, lineCounter, entries);
  const where = (offset: number): Where => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: file.path, line, column: col, path: '' };
  };
  const diagnostics = [
    ...doc.errors.map((e) => diagnostic('error', where(e.pos[0]), firstLine(e.message))),
    ...doc.warnings.map((w) => diagnostic('warning', where(w.pos[0]), firstLine(w.message))),
  ];
  // An alias before its anchor would otherwise only fail in toJS, without a position;
  // a __proto__ key would silently vanish on the way through plain objects.
  const aliases: Alias[] = [];
  visit(doc, {
    Map(_, map) {
      const keys = new Set<unknown>();
      for (const { key } of map.items) {
        const name = isScalar(key) ? key.value : key;
        if (keys.has(name)) {
          const offset = isNode(key) ? key.range![0] : map.range![0];
          diagnostics.push(diagnostic('error', where(offset), 'Map keys must be unique'));
        }
        keys.add(name);
      }
    },
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === '__proto__') {
        diagnostics.push(
          diagnostic('error', where(pair.key.range![0]), '"__proto__" cannot be used as a key'),
        );
      }
    },
    Alias(_, alias) {
      aliases.push(alias);
    },
  });
  // Each alias is looked up through the whole document: many of them would take minutes.
  const excess = aliases[MAX_ALIASES];
  if (excess) {
    diagnostics.push(
      diagnostic(
        'error',
        where(excess.range![0]),
        `more than ${MAX_ALIASES} aliases (*name) in one file: write the values out, or use templates`,
      ),
    );
  } else {
    for (const alias of aliases) {
      if (!alias.resolve(doc)) {
        diagnostics.push(
          diagnostic(
            'error',
            where(alias.range![0]),
            `unknown anchor "${alias.source}": define &${alias.source} before using it`,
          ),
        );
      }
    }
  }
  if (hasErrors(diagnostics)) return { data: undefined, diagnostics, locator };
  index(doc.contents, '', undefined, entries);
  try {
    const data: unknown = doc.toJS({ maxAliasCount: 1000 });
    return { data, diagnostics, locator };
  } catch (error) {
    // An unresolved alias or an alias bomb: the file cannot be read.
    diagnostics.push(diagnostic('error', where(0), (error as Error).message));
    return { data: undefined, diagnostics, locator };
  }
}
