/**
 * Loads `.tower/`: parses every file, checks it against the schema, merges
 * the files, resolves names and applies templates. Each mistake becomes a
 * diagnostic and loading goes on, so one pass reports as many as it can.
 */
import {
  defaultCondition,
  finishedResults,
  jobResults,
  type JobKind,
  type JobResult,
} from '../lib/graph-spec.js';
import {
  compare,
  diagnostic,
  formatWhere,
  hasErrors,
  tidyDiagnostics,
  type Diagnostic,
  type SourceFile,
  type Where,
} from './diagnostics.js';
import { limitedSuggestions } from './did-you-mean.js';
import { definitionLimitErrors } from './limits.js';
import { parseDuration } from './durations.js';
import { compileGlob, compilePathFilter, isGlob } from './globs.js';
import type {
  BranchDefs,
  DefineCondition,
  Definitions,
  Defines,
  GraphDef,
  IncludeDef,
  JobDef,
  LandingDef,
  NeedDef,
  SchedulerDef,
} from './model.js';
import { parseYaml, type Locator, type Path } from './positions.js';
import {
  BranchDefinesSchema,
  BranchFileSchema,
  BranchPatternSchema,
  commonKeys,
  DEFINE_PATTERN,
  DEFINITIONS_VERSION,
  DefinitionsFileSchema,
  GraphNameSchema,
  GraphTestSchema,
  GraphTestsFileSchema,
  IncludeSchema,
  JobSchema,
  kindKeys,
  LabelSchema,
  LandingSchema,
  SchedulerSchema,
  TemplateNameSchema,
  TemplateSchema,
  type Condition,
  type DefineValue,
  type GraphTest,
  type Include,
  type Job,
  type Landing,
  type Scheduler,
  type Template,
} from './schema.js';
import { parseText, type ParsedText, type Segment } from './substitute.js';
import { check, parseLeniently, parseQuietly } from './zod-issues.js';

/** A value read from a file, with where it is written. */
type Piece<T> = { value: T; locator: Locator; path: Path; where: Where };

type GraphPieces = {
  where: Where;
  /** A job whose unknown keys were dropped has `stripped` set: its kind may be a typo away. */
  jobs: { label: string; job: (Piece<Job> & { stripped: boolean }) | undefined }[];
  includes: Piece<Include>[];
  broken: boolean;
};

type BranchPieces = Map<string, { value: DefineValue; where: Where }>;

export type GraphTestPiece = Piece<GraphTest> & { file: string };

/** Everything read from the files, before names are resolved. */
type Collected = {
  templates: Map<string, Piece<Template>>;
  brokenTemplates: Set<string>;
  graphs: Map<string, GraphPieces>;
  schedulers: Piece<Scheduler>[];
  branches: Map<string, BranchPieces>;
  landing: Piece<Landing> | undefined;
  tests: GraphTestPiece[];
  /** A file could not be read: any name might have been defined in it. */
  partial: boolean;
  /** A branch section could not be read: any define might have been set in it. */
  partialDefines: boolean;
  diagnostics: Diagnostic[];
};

type FileRole = 'definitions' | 'branches' | 'tests';

/** Which files are read, and as what; others under `.tower/` are ignored. */
function roleOf(path: string): FileRole | 'ignored' | undefined {
  if (!path.startsWith('.tower/') || !/\.ya?ml$/.test(path)) return undefined;
  const rest = path.slice('.tower/'.length);
  if (!rest.includes('/')) return 'definitions';
  if (/^branches\/[^/]+$/.test(rest)) return 'branches';
  if (/^tests\/[^/]+$/.test(rest)) return 'tests';
  return 'ignored';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function entries(value: unknown): [string, unknown][] {
  return isRecord(value) ? Object.entries(value) : [];
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function byPath(a: Pick<SourceFile, 'path'>, b: Pick<SourceFile, 'path'>): number {
  return compare(a.path, b.path);
}

function collectFile(file: SourceFile, role: FileRole, into: Collected): void {
  const { data, diagnostics, locator } = parseYaml(file);
  into.diagnostics.push(...diagnostics);
  const at = (path: Path) => locator.value(path);
  // Names an unreadable definitions file might define are not reported as unknown.
  const unreadable = () => {
    if (role !== 'tests') into.partial = true;
  };
  if (data === undefined) {
    unreadable();
    return;
  }
  if (!isRecord(data)) {
    into.diagnostics.push(
      diagnostic(
        'error',
        at([]),
        `expected a mapping that starts with "version: ${DEFINITIONS_VERSION}"`,
      ),
    );
    unreadable();
    return;
  }
  // Another version is another format: checking the rest against this one would only confuse.
  if (data.version !== undefined && data.version !== DEFINITIONS_VERSION) {
    into.diagnostics.push(
      ...check(DefinitionsFileSchema.shape.version, data.version, locator, ['version']).diagnostics,
    );
    unreadable();
    return;
  }
  const schema =
    role === 'definitions'
      ? DefinitionsFileSchema
      : role === 'branches'
        ? BranchFileSchema
        : GraphTestsFileSchema;
  into.diagnostics.push(...check(schema, data, locator).diagnostics);
  const piece = <T>(value: T, path: Path, where = locator.key(path)): Piece<T> => ({
    value,
    locator,
    path,
    where,
  });

  if (role === 'tests') {
    (Array.isArray(data.tests) ? data.tests : []).forEach((raw, i) => {
      const test = parseQuietly(GraphTestSchema, raw);
      const path = ['tests', i];
      if (test) into.tests.push({ file: file.path, ...piece(test, path, at(path)) });
    });
    return;
  }

  for (const [pattern, raw] of entries(data.branches)) {
    const path = ['branches', pattern];
    for (const name of Object.keys(isRecord(raw) ? raw : {})) {
      if (!DEFINE_PATTERN.test(name)) {
        into.diagnostics.push(
          diagnostic(
            'error',
            locator.key([...path, name]),
            `a define name must start with a letter or "_" and hold only letters, digits, "_" and "-"`,
          ),
        );
      }
    }
    const defines = parseQuietly(BranchDefinesSchema, raw);
    if (!defines || !parseQuietly(BranchPatternSchema, pattern)) {
      into.partialDefines = true;
      continue;
    }
    let merged = into.branches.get(pattern);
    if (!merged) {
      merged = new Map();
      into.branches.set(pattern, merged);
    }
    for (const [name, value] of Object.entries(defines)) {
      if (value === undefined || !DEFINE_PATTERN.test(name)) continue;
      const where = locator.key([...path, name]);
      const first = merged.get(name);
      if (first) {
        into.diagnostics.push(
          diagnostic(
            'error',
            where,
            `"${name}" for "${pattern}" is already set at ${formatWhere(first.where)}`,
          ),
        );
      } else {
        merged.set(name, { value, where });
      }
    }
  }
  if (role === 'branches') return;

  if (data.landing !== undefined) {
    const landing = parseQuietly(LandingSchema, data.landing);
    if (into.landing) {
      into.diagnostics.push(
        diagnostic(
          'error',
          locator.key(['landing']),
          `landing is already configured at ${formatWhere(into.landing.where)}`,
        ),
      );
    } else if (landing) {
      into.landing = piece(landing, ['landing']);
    }
  }

  (Array.isArray(data.schedulers) ? data.schedulers : []).forEach((raw, i) => {
    const scheduler = parseQuietly(SchedulerSchema, raw);
    const path = ['schedulers', i];
    if (scheduler) into.schedulers.push(piece(scheduler, path, at(path)));
  });

  for (const [name, raw] of entries(data.templates)) {
    const path = ['templates', name];
    const template = parseQuietly(TemplateSchema, raw);
    if (!template || !parseQuietly(TemplateNameSchema, name)) {
      into.brokenTemplates.add(name);
      continue;
    }
    const first = into.templates.get(name);
    if (first) {
      into.diagnostics.push(
        diagnostic(
          'error',
          locator.key(path),
          `template "${name}" is already defined at ${formatWhere(first.where)}`,
        ),
      );
    } else {
      into.templates.set(name, piece(template, path));
    }
  }

  for (const [name, raw] of entries(data.graphs)) {
    const path = ['graphs', name];
    const where = locator.key(path);
    const first = into.graphs.get(name);
    if (first) {
      into.diagnostics.push(
        diagnostic(
          'error',
          where,
          `graph "${name}" is already defined at ${formatWhere(first.where)}`,
        ),
      );
      continue;
    }
    const graph: GraphPieces = { where, jobs: [], includes: [], broken: false };
    into.graphs.set(name, graph);
    if (!isRecord(raw) || !parseQuietly(GraphNameSchema, name)) {
      graph.broken = true;
      continue;
    }
    for (const [label, rawJob] of entries(raw.jobs)) {
      const jobPath = [...path, 'jobs', label];
      const job = parseQuietly(LabelSchema, label) ? parseLeniently(JobSchema, rawJob) : undefined;
      graph.jobs.push({
        label,
        job: job && { ...piece(job.value, jobPath), stripped: job.stripped },
      });
    }
    if (raw.jobs !== undefined && !isRecord(raw.jobs)) graph.broken = true;
    if (raw.include !== undefined && !Array.isArray(raw.include)) graph.broken = true;
    (Array.isArray(raw.include) ? raw.include : []).forEach((rawInclude, i) => {
      const include = parseQuietly(IncludeSchema, rawInclude);
      const includePath = [...path, 'include', i];
      if (include) graph.includes.push(piece(include, includePath, at(includePath)));
      else graph.broken = true;
    });
  }
}

function parseCondition(condition: string | boolean | undefined): DefineCondition {
  if (condition === undefined || typeof condition === 'boolean') return condition ?? true;
  const negate = condition.startsWith('!');
  return { define: negate ? condition.slice(1) : condition, negate };
}

function conditionResults(condition: Condition): JobResult[] {
  if (condition === 'finished') return [...finishedResults];
  if (condition === 'any') return [...jobResults];
  const listed = new Set<string>(typeof condition === 'string' ? [condition] : condition);
  return jobResults.filter((r) => listed.has(r));
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compare);
}

/** Names, templates and defines known while jobs are resolved. */
type Context = {
  collected: Collected;
  defineNames: Set<string>;
  diagnostics: Diagnostic[];
  suggest: ReturnType<typeof limitedSuggestions>;
};

/** Unknown names and unclosed `${{` in a string; unknown defines unless a file could not be read. */
function reportText(parsed: ParsedText, place: (occurrence: number) => Where, ctx: Context): void {
  for (const problem of parsed.problems)
    ctx.diagnostics.push(diagnostic('error', place(problem.occurrence), problem.message));
  for (const define of parsed.defines) {
    if (
      !ctx.defineNames.has(define.name) &&
      !ctx.collected.partial &&
      !ctx.collected.partialDefines
    ) {
      ctx.diagnostics.push(
        diagnostic(
          'error',
          place(define.occurrence),
          `unknown define "${define.name}": no branch section sets it${ctx.suggest(define.name, () => [...ctx.defineNames].sort())}`,
        ),
      );
    }
  }
}

/** Keys a kind of job accepts. */
function keysFor(kind: JobKind): Set<string> {
  return new Set<string>([...commonKeys, ...kindKeys[kind]]);
}

/** The kinds a key applies to, as a hint. */
function appliesTo(key: string): string {
  const kinds = Object.entries(kindKeys)
    .filter(([, keys]) => (keys as string[]).includes(key))
    .map(([k]) => k);
  return kinds.length > 0 ? ` (it applies to ${kinds.join(' and ')} jobs)` : '';
}

/**
 * Checks a template on its own, so that mistakes in one no job uses yet
 * are found too: its strings, and with an explicit kind, its keys.
 */
function checkTemplate({ value, locator, path }: Piece<Template>, ctx: Context): void {
  const texts: [Path, string][] = Object.entries(value.env ?? {}).map(([name, v]) => [
    [...path, 'env', name],
    v,
  ]);
  if (value.command !== undefined) texts.push([[...path, 'command'], value.command]);
  if (value.comment !== undefined) texts.push([[...path, 'comment'], value.comment]);
  for (const [at, text] of texts) {
    const parsed = parseText(text);
    reportText(parsed, (occurrence) => locator.inString(at, '${{', occurrence, parsed.count), ctx);
  }
  if (value.kind === undefined) return;
  const allowed = keysFor(value.kind);
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      ctx.diagnostics.push(
        diagnostic(
          'error',
          locator.key([...path, key]),
          `"${key}" does not apply to ${value.kind} jobs${appliesTo(key)}`,
        ),
      );
    }
  }
}

/** What a job of this kind lacks. */
function missingKeys(
  kind: JobKind,
  label: string,
  has: (key: keyof Template) => boolean,
): string[] {
  const needs = (key: keyof Template, what: string) =>
    has(key) ? [] : [`${kind} job "${label}" needs ${what}`];
  switch (kind) {
    case 'command':
      return [
        ...needs('requires', '"requires": the minion tags it runs on'),
        ...needs('command', 'a "command"'),
      ];
    case 'breakpoint':
      return needs('approvers', '"approvers": who may approve it');
    case 'timer':
      if (has('delay') && has('at'))
        return [`timer job "${label}" has both "delay" and "at"; keep one`];
      return has('delay') || has('at') ? [] : [`timer job "${label}" needs "delay" or "at"`];
    case 'notify':
      return has('comment') || has('webhook')
        ? []
        : [`notify job "${label}" needs a "comment", a "webhook" or both`];
    case 'trigger':
      return [
        ...needs('cluster', 'a "cluster": the peer that builds the graph'),
        ...needs('graph', 'a "graph": the graph the peer builds'),
      ];
    case 'dummy':
      return [];
  }
}

type Field<T> = { value: T; locator: Locator; path: Path; fromTemplate: boolean };

function resolveJob(
  graph: string,
  label: string,
  job: Piece<Job> & { stripped: boolean },
  ctx: Context,
): JobDef | undefined {
  const { collected, diagnostics } = ctx;
  const error = (where: Where, message: string) =>
    diagnostics.push(diagnostic('error', where, message));
  const own = job.value;
  let template: Piece<Template> | undefined;
  if (own.use !== undefined) {
    template = collected.templates.get(own.use);
    if (!template) {
      if (!collected.partial && !collected.brokenTemplates.has(own.use)) {
        error(
          job.locator.value([...job.path, 'use']),
          `unknown template "${own.use}"${ctx.suggest(own.use, () => [...collected.templates.keys()].sort())}`,
        );
      }
      return undefined;
    }
  }
  const tpl = template;
  function field<K extends keyof Template>(key: K): Field<NonNullable<Template[K]>> | undefined {
    const mine = own[key];
    if (mine !== undefined && mine !== null)
      return { value: mine, locator: job.locator, path: [...job.path, key], fromTemplate: false };
    const inherited = tpl?.value[key];
    if (tpl && inherited !== undefined && inherited !== null) {
      return {
        value: inherited,
        locator: tpl.locator,
        path: [...tpl.path, key],
        fromTemplate: true,
      };
    }
    return undefined;
  }
  const has = (key: keyof Template) => field(key) !== undefined;

  const kind: JobKind = field('kind')?.value ?? 'command';
  const allowed = keysFor(kind);
  // With an unknown key dropped (say, a misspelt "kind"), the kind is a guess: say nothing of it.
  if (!job.stripped) {
    for (const key of Object.keys(own)) {
      if (!allowed.has(key)) {
        error(
          job.locator.key([...job.path, key]),
          `"${key}" does not apply to ${kind} jobs${appliesTo(key)}`,
        );
      }
    }
    for (const key of Object.keys(tpl?.value ?? {})) {
      if (!allowed.has(key) && !Object.hasOwn(own, key)) {
        error(
          job.locator.value([...job.path, 'use']),
          `template "${own.use}" sets "${key}", which does not apply to ${kind} jobs${appliesTo(key)}`,
        );
      }
    }
    for (const message of missingKeys(kind, label, has)) error(job.where, message);
  }

  const chunksField = kind === 'command' ? field('chunks') : undefined;
  const chunks = chunksField
    ? typeof chunksField.value === 'number'
      ? { count: chunksField.value }
      : { min: chunksField.value.min, max: chunksField.value.max }
    : null;

  const text = (f: Field<string>): Segment[] => {
    const parsed = parseText(f.value);
    const place = (occurrence: number) =>
      f.locator.inString(f.path, '${{', occurrence, parsed.count);
    reportText(parsed, place, ctx);
    if (parsed.usesChunk && !chunks) {
      const where = f.fromTemplate ? ` (from template "${own.use}")` : '';
      error(
        place(parsed.usesChunk.occurrence),
        `\${{ ${parsed.usesChunk.name} }} needs chunks, and job "${label}" has none${where}`,
      );
    }
    return parsed.segments;
  };

  const needs: NeedDef[] = [];
  const needsField = field('needs');
  if (needsField) {
    const { value, locator, path } = needsField;
    const list: [string, JobResult[], Where][] = Array.isArray(value)
      ? value.map((need, i) => [need, [...defaultCondition], locator.value([...path, i])])
      : Object.entries(value).map(([need, condition]) => [
          need,
          conditionResults(condition),
          locator.key([...path, need]),
        ]);
    const seen = new Set<string>();
    for (const [need, results, where] of list) {
      if (need === label) error(where, `job "${label}" needs itself`);
      else if (seen.has(need)) error(where, `"${need}" is listed twice`);
      else needs.push({ job: need, results, where });
      seen.add(need);
    }
  }

  const requestTimeout = field('request_timeout');
  const onRequestTimeout = field('on_request_timeout');
  if (onRequestTimeout && !requestTimeout && allowed.has('on_request_timeout')) {
    ctx.diagnostics.push(
      diagnostic(
        'warning',
        onRequestTimeout.locator.key(onRequestTimeout.path),
        'on_request_timeout has no effect without request_timeout',
      ),
    );
  }
  const seconds = (key: 'max_runtime' | 'idle_timeout' | 'delay') => {
    const f = allowed.has(key) ? field(key) : undefined;
    return f ? parseDuration(f.value)! : null;
  };
  const only = <T>(k: JobKind, value: () => T): T | null => (kind === k ? value() : null);
  const priority = kind === 'command' ? field('priority') : undefined;
  const changed = field('changed');
  const env = kind === 'command' ? { ...tpl?.value.env, ...own.env } : {};
  const envField = (name: string): Field<string> => {
    const mine = own.env !== undefined && Object.hasOwn(own.env, name);
    const source = mine ? job : tpl!;
    return {
      value: env[name]!,
      locator: source.locator,
      path: [...source.path, 'env', name],
      fromTemplate: !mine,
    };
  };
  const at = field('at')?.value;
  const comment = field('comment');

  return {
    label,
    graph,
    where: job.where,
    kind,
    requires: kind === 'command' ? sortedUnique(field('requires')?.value ?? []) : [],
    priority: priority?.value ?? 0,
    priorityWhere: priority && priority.locator.key(priority.path),
    retries: kind === 'command' ? (field('retries')?.value ?? 0) : 0,
    maxRuntime: seconds('max_runtime'),
    idleTimeout: seconds('idle_timeout'),
    requestTimeout:
      requestTimeout && allowed.has('request_timeout')
        ? {
            seconds: parseDuration(requestTimeout.value)!,
            result: onRequestTimeout?.value ?? 'timed-out',
          }
        : null,
    needs,
    changed: changed ? compilePathFilter(changed.value) : null,
    command: kind === 'command' && has('command') ? text(field('command')!) : null,
    env: Object.keys(env)
      .sort()
      .map((name) => [name, text(envField(name))]),
    artifacts: kind === 'command' ? sortedUnique(field('artifacts')?.value ?? []) : [],
    chunks,
    dummy: only('dummy', () => ({ result: field('result')?.value ?? null })),
    breakpoint: only('breakpoint', () => ({
      approvers: sortedUnique(field('approvers')?.value ?? []),
    })),
    timer: only('timer', () => ({
      delaySeconds: seconds('delay'),
      // One spelling for one instant, whatever offset it was written with.
      at: at === undefined ? null : new Date(at).toISOString(),
    })),
    notify: only('notify', () => ({
      comment: comment ? text(comment) : null,
      webhook: field('webhook')?.value ?? null,
    })),
    trigger: only('trigger', () => ({
      cluster: field('cluster')?.value ?? '',
      graph: field('graph')?.value ?? '',
    })),
  };
}

function definesOf(pieces: BranchPieces): Defines {
  return new Map([...pieces].map(([name, { value }]) => [name, value]));
}

function reportIncludeLoops(graphs: Map<string, GraphDef>, diagnostics: Diagnostic[]): void {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (graph: GraphDef) => {
    state.set(graph.name, 'open');
    stack.push(graph.name);
    for (const include of graph.includes) {
      const target = graphs.get(include.graph);
      if (!target) continue;
      const seen = state.get(include.graph);
      if (seen === 'open') {
        const loop = [...stack.slice(stack.indexOf(include.graph)), include.graph];
        diagnostics.push(diagnostic('error', include.where, `include loop: ${loop.join(' → ')}`));
      } else if (seen === undefined) {
        visit(target);
      }
    }
    stack.pop();
    state.set(graph.name, 'done');
  };
  for (const graph of graphs.values()) if (!state.has(graph.name)) visit(graph);
}

export type Loaded = {
  /** Always present, perhaps partial: checkDefinitions builds graphs from it to find more mistakes. */
  definitions: Definitions;
  tests: GraphTestPiece[];
  diagnostics: Diagnostic[];
};

/** Loads every file; mistakes are diagnostics, and the definitions hold whatever could be read. */
export function loadAll(files: readonly SourceFile[], options: { tests?: boolean } = {}): Loaded {
  const collected: Collected = {
    templates: new Map(),
    brokenTemplates: new Set(),
    graphs: new Map(),
    schedulers: [],
    branches: new Map(),
    landing: undefined,
    tests: [],
    partial: false,
    partialDefines: false,
    diagnostics: [],
  };
  // Over the limits, no file is parsed: the limits are all there is to say.
  const listed = files
    .filter((file) => roleOf(file.path) !== undefined)
    .map((file) => ({ path: file.path, size: file.size ?? utf8Length(file.content) }))
    .sort(byPath);
  const overLimits = definitionLimitErrors(listed);
  collected.diagnostics.push(...overLimits);
  collected.partial = overLimits.length > 0;
  for (const file of overLimits.length > 0 ? [] : [...files].sort(byPath)) {
    const role = roleOf(file.path);
    if (role === 'ignored') {
      collected.diagnostics.push(
        diagnostic(
          'warning',
          { file: file.path, line: 1, column: 1, path: '' },
          'ignored: Tower reads .tower/*.yml, .tower/branches/*.yml and .tower/tests/*.yml',
        ),
      );
    } else if (role && (role !== 'tests' || options.tests)) {
      collectFile(file, role, collected);
    }
  }
  const diagnostics = collected.diagnostics;

  const branches: BranchDefs = { defaults: new Map(), exact: new Map(), globs: [] };
  const defineNames = new Set<string>();
  for (const [pattern, pieces] of collected.branches) {
    const defines = definesOf(pieces);
    for (const name of defines.keys()) defineNames.add(name);
    if (pattern === 'default') branches.defaults = defines;
    else if (isGlob(pattern))
      branches.globs.push({ pattern, matches: compileGlob(pattern), defines });
    else branches.exact.set(pattern, defines);
  }

  const graphNames = [...collected.graphs.keys()].sort();
  const suggest = limitedSuggestions();
  const ctx: Context = { collected, defineNames, diagnostics, suggest };
  const unknownGraph = (name: string, where: Where) => {
    if (!collected.graphs.has(name) && !collected.partial) {
      diagnostics.push(
        diagnostic('error', where, `unknown graph "${name}"${suggest(name, () => graphNames)}`),
      );
    }
  };
  const condition = (value: string | boolean | undefined, where: Where): DefineCondition => {
    const parsed = parseCondition(value);
    const unknown = !collected.partial && !collected.partialDefines;
    if (typeof parsed !== 'boolean' && !defineNames.has(parsed.define) && unknown) {
      diagnostics.push(
        diagnostic(
          'warning',
          where,
          `no branch section sets "${parsed.define}", so it is always false${suggest(parsed.define, () => [...defineNames].sort())}`,
        ),
      );
    }
    return parsed;
  };

  const schedulers: SchedulerDef[] = collected.schedulers.map(({ value, locator, path, where }) => {
    unknownGraph(value.graph, locator.value([...path, 'graph']));
    const when = condition(value.when, locator.value([...path, 'when']));
    if (value.on === 'cron') {
      return {
        on: value.on,
        branches: null,
        branch: value.branch,
        schedule: value.schedule,
        graph: value.graph,
        when,
        where,
      };
    }
    const globs = value.branches?.map((pattern) => compileGlob(pattern)) ?? null;
    return {
      on: value.on,
      branches: globs,
      branch: null,
      schedule: null,
      graph: value.graph,
      when,
      where,
    };
  });

  for (const template of collected.templates.values()) checkTemplate(template, ctx);

  const graphs = new Map<string, GraphDef>();
  for (const [name, pieces] of collected.graphs) {
    const includes: IncludeDef[] = pieces.includes.map(({ value, locator, path, where }) => {
      const target = typeof value === 'string' ? value : value.graph;
      unknownGraph(target, typeof value === 'string' ? where : locator.value([...path, 'graph']));
      const active =
        typeof value === 'string'
          ? true
          : condition(value.active, locator.value([...path, 'active']));
      return { graph: target, active, where };
    });
    const graph: GraphDef = {
      name,
      where: pieces.where,
      jobs: [],
      includes,
      brokenLabels: new Set(),
      incomplete: pieces.broken,
    };
    for (const { label, job } of pieces.jobs) {
      const def = job && resolveJob(name, label, job, ctx);
      if (def) graph.jobs.push(def);
      else graph.brokenLabels.add(label);
    }
    graphs.set(name, graph);
  }
  reportIncludeLoops(graphs, diagnostics);

  return {
    definitions: {
      graphs,
      schedulers,
      branches,
      landing: landingOf(collected.landing?.value),
      defineNames,
      partial: collected.partial,
    },
    tests: collected.tests,
    diagnostics: tidyDiagnostics(diagnostics),
  };
}

function landingOf(landing: Landing | undefined): LandingDef | null {
  if (!landing) return null;
  return {
    branches: landing.branches?.map((pattern) => compileGlob(pattern)) ?? null,
    method: landing.method ?? 'merge',
    approvals: landing.approvals ?? 1,
    label: landing.label ?? null,
    batch: landing.batch ?? { min: 1, max: 8 },
    parallel: landing.parallel ?? 4,
  };
}

/**
 * Reads `.tower/` files (other paths are ignored; `.tower/tests/` holds
 * graph assertions, not definitions). The definitions are undefined when
 * there is an error.
 */
export function loadDefinitions(files: readonly SourceFile[]): {
  definitions: Definitions | undefined;
  diagnostics: Diagnostic[];
} {
  const { definitions, diagnostics } = loadAll(files);
  return { definitions: hasErrors(diagnostics) ? undefined : definitions, diagnostics };
}
