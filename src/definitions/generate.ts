/**
 * Builds graph specs from loaded definitions for an event: which graphs the
 * schedulers select, then for each its includes, dependencies, chunks, path
 * filters, priorities and substitutions. Pure and deterministic: the same
 * definitions and event give the same specs, byte for byte.
 */
import {
  GRAPH_SPEC_VERSION,
  type DependencySpec,
  type EventType,
  type GraphSpec,
  type JobSpec,
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
import { didYouMean, limitedSuggestions } from './did-you-mean.js';
import { loadAll } from './load.js';
import type { DefineCondition, Defines, Definitions, GraphDef, JobDef } from './model.js';
import type { DefineValue } from './schema.js';
import { render } from './substitute.js';

/** A graph this large is surely a mistake (say, chunks multiplied by a matrix); it would swamp the scheduler. */
export const MAX_GRAPH_JOBS = 100_000;

export type DefinitionsEvent = {
  type: EventType;
  /** The branch pushed to, or for a pull request its base branch. */
  branch: string;
  sha: string;
  /** Files the event changed; null or absent when unknown (every path filter passes). */
  changedFiles?: string[] | null;
  /** The pull request number, for `${{ event.number }}`. */
  number?: number;
  author?: string;
  /** Cron events: the schedule that fired, so that two schedules of one branch build their own graphs. */
  schedule?: string;
};

/** The defines for a branch: default, then the exact branch name, then each matching glob in order; later wins. */
function branchDefines(definitions: Definitions, branch: string): Defines {
  const { defaults, exact, globs } = definitions.branches;
  const defines = new Map(defaults);
  for (const [name, value] of exact.get(branch) ?? []) defines.set(name, value);
  for (const glob of globs) {
    if (glob.matches(branch)) for (const [name, value] of glob.defines) defines.set(name, value);
  }
  return defines;
}

/** The defines in effect on a branch, sorted by name. */
export function definesFor(definitions: Definitions, branch: string): Record<string, DefineValue> {
  return sortedRecord(branchDefines(definitions, branch));
}

function holds(condition: DefineCondition, defines: Defines): boolean {
  if (typeof condition === 'boolean') return condition;
  return Boolean(defines.get(condition.define)) !== condition.negate;
}

/** The graphs an event builds, in scheduler order, each once. */
export function selectGraphs(definitions: Definitions, event: DefinitionsEvent): string[] {
  const defines = branchDefines(definitions, event.branch);
  const selected = new Set<string>();
  for (const scheduler of definitions.schedulers) {
    if (scheduler.on !== event.type) continue;
    if (scheduler.on === 'cron') {
      if (scheduler.branch !== event.branch) continue;
      if (event.schedule !== undefined && scheduler.schedule !== event.schedule) continue;
    } else if (scheduler.branches && !scheduler.branches.some((matches) => matches(event.branch))) {
      continue;
    }
    if (holds(scheduler.when, defines)) selected.add(scheduler.graph);
  }
  return [...selected];
}

/**
 * The cron schedules, for whatever fires cron events: each once, with the
 * branch it builds (pass both back as the event's branch and schedule).
 */
export function cronSchedules(definitions: Definitions): { schedule: string; branch: string }[] {
  const seen = new Set<string>();
  const schedules: { schedule: string; branch: string }[] = [];
  for (const { schedule, branch } of definitions.schedulers) {
    if (schedule === null || branch === null || seen.has(`${schedule}\0${branch}`)) continue;
    seen.add(`${schedule}\0${branch}`);
    schedules.push({ schedule, branch });
  }
  return schedules;
}

type BuildMode = 'event' | 'check';

/** The built graph's jobs, each graph of the include closure with whether it is active. */
function closure(
  definitions: Definitions,
  root: GraphDef,
  defines: Defines,
): { order: GraphDef[]; active: Map<string, boolean> } {
  const active = new Map<string, boolean>();
  const order: GraphDef[] = [];
  // A graph reached twice joins once; active if any path to it is.
  const visit = (graph: GraphDef, on: boolean) => {
    const before = active.get(graph.name);
    if (before === undefined) order.push(graph);
    else if (before || !on) return;
    active.set(graph.name, on);
    for (const include of graph.includes) {
      const target = definitions.graphs.get(include.graph);
      if (target) visit(target, on && holds(include.active, defines));
    }
  };
  visit(root, true);
  return { order, active };
}

/** Reports each dependency cycle once, in the order jobs run: each job needs the one before it. */
function reportCycles(
  jobs: Map<string, JobDef>,
  labels: string[],
  error: (where: Where, message: string) => void,
): void {
  const state = new Map<string, 'open' | 'done'>();
  for (const start of labels) {
    if (state.has(start)) continue;
    const stack: { job: JobDef; next: number }[] = [{ job: jobs.get(start)!, next: 0 }];
    const path = [start];
    state.set(start, 'open');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const need = top.job.needs[top.next++];
      if (!need) {
        state.set(top.job.label, 'done');
        stack.pop();
        path.pop();
        continue;
      }
      const target = jobs.get(need.job);
      if (!target) continue;
      const seen = state.get(target.label);
      if (seen === 'open') {
        const cycle = [...path.slice(path.indexOf(target.label)), target.label].reverse();
        error(
          need.where,
          `dependency cycle: ${cycle.join(' → ')} (each job needs the one before it)`,
        );
      } else if (seen === undefined) {
        state.set(target.label, 'open');
        stack.push({ job: target, next: 0 });
        path.push(target.label);
      }
    }
  }
}

/** The jobs one definition becomes: its fixed chunks, or a range job and its most chunks, or itself. */
function jobCount(job: JobDef): number {
  if (job.chunks === null) return 1;
  return 'count' in job.chunks ? job.chunks.count : 1 + job.chunks.max;
}

function labelsOf(job: JobDef): string[] {
  const count = job.chunks && 'count' in job.chunks ? job.chunks.count : 0;
  return count === 0
    ? [job.label]
    : Array.from({ length: count }, (_, i) => `${job.label}/${i + 1}`);
}

function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => compare(a, b)));
}

function build(
  definitions: Definitions,
  name: string,
  event: DefinitionsEvent,
  mode: BuildMode,
): { spec: GraphSpec | undefined; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const error = (where: Where, message: string) =>
    diagnostics.push(diagnostic('error', where, message));
  const root = definitions.graphs.get(name);
  if (!root) {
    const graphs = [...definitions.graphs.keys()].sort();
    error(
      { file: '.tower', line: 1, column: 1, path: 'graphs' },
      `no graph named "${name}"${didYouMean(name, graphs)}`,
    );
    return { spec: undefined, diagnostics };
  }
  // A check covers every branch: no branch's defines (and caps) apply.
  const defines =
    mode === 'check' ? new Map<string, DefineValue>() : branchDefines(definitions, event.branch);
  const { order, active } = closure(definitions, root, defines);

  const jobs = new Map<string, JobDef>();
  const broken = new Set<string>();
  let incomplete = definitions.partial;
  for (const graph of order) {
    incomplete ||= graph.incomplete;
    for (const label of graph.brokenLabels) broken.add(label);
    for (const job of graph.jobs) {
      const first = jobs.get(job.label);
      if (first) {
        error(
          job.where,
          `job "${job.label}" is already defined in graph "${first.graph}" at ${formatWhere(first.where)}`,
        );
      } else {
        jobs.set(job.label, job);
      }
    }
  }
  const labels = [...jobs.keys()].sort(compare);
  const suggest = limitedSuggestions();

  for (const job of jobs.values()) {
    for (const need of job.needs) {
      const target = jobs.get(need.job);
      if (!target) {
        if (!incomplete && !broken.has(need.job)) {
          error(
            need.where,
            `unknown job "${need.job}" in graph "${name}"${suggest(need.job, () => labels)}`,
          );
        }
      } else if (target.dummy?.result && !need.results.includes(target.dummy.result)) {
        error(
          need.where,
          `this condition can never hold: "${need.job}" always ends ${target.dummy.result}, and the condition accepts ${need.results.join(', ')}`,
        );
      }
    }
  }
  reportCycles(jobs, labels, error);

  // Counted before any chunk label is built: a range job counts with its most chunks.
  let total = 0;
  for (const job of jobs.values()) total += jobCount(job);
  if (total > MAX_GRAPH_JOBS) {
    error(
      root.where,
      `graph "${name}" has ${total} jobs (chunks counted, a range at its max), more than the limit of ${MAX_GRAPH_JOBS}`,
    );
  }
  // A check wants only the mistakes; the spec would be thrown away.
  if (hasErrors(diagnostics) || mode === 'check') return { spec: undefined, diagnostics };
  const expanded = new Map<string, string[]>();
  for (const job of jobs.values()) expanded.set(job.label, labelsOf(job));

  const maxPriority = defines.get('max_priority');
  const cap = typeof maxPriority === 'number' ? maxPriority : undefined;
  const changedFiles =
    event.changedFiles == null ? null : [...new Set(event.changedFiles)].sort(compare);
  const known = (text: string | undefined) => text ?? '';
  const eventValue = (key: string): string | undefined => {
    switch (key) {
      case 'sha':
        return event.sha;
      case 'branch':
        return event.branch;
      case 'event.type':
        return event.type;
      case 'event.number':
        return known(event.number?.toString());
      case 'event.author':
        return known(event.author);
      default: {
        // The load checked every name; only defines.<name> remains. A define this branch lacks is empty.
        const value = defines.get(key.slice('defines.'.length));
        return value === undefined ? '' : String(value);
      }
    }
  };

  const specs: JobSpec[] = [];
  for (const job of jobs.values()) {
    let priority = job.priority;
    if (cap !== undefined && priority > cap) {
      diagnostics.push(
        diagnostic(
          'warning',
          job.priorityWhere ?? job.where,
          `priority ${priority} is capped at ${cap}, the max_priority of branch "${event.branch}"`,
        ),
      );
      priority = cap;
    }
    const inactive = !active.get(job.graph);
    const filtered = job.changed !== null && changedFiles !== null && !job.changed(changedFiles);
    const own = expanded.get(job.label)!;
    const chunks = job.chunks;
    own.forEach((label, i) => {
      const chunk =
        chunks === null
          ? null
          : 'count' in chunks
            ? { index: i + 1, count: chunks.count }
            : { ...chunks };
      const value = (key: string): string | undefined => {
        if (key === 'chunk') return chunk && 'index' in chunk ? String(chunk.index) : undefined;
        if (key === 'chunks') return chunk && 'count' in chunk ? String(chunk.count) : undefined;
        return eventValue(key);
      };
      const dependencies: DependencySpec[] = job.needs
        .flatMap((need) =>
          (expanded.get(need.job) ?? []).map((dep) => ({ job: dep, results: [...need.results] })),
        )
        .sort((a, b) => compare(a.job, b.job));
      specs.push({
        label,
        kind: job.kind,
        inactive,
        filtered,
        requires: [...job.requires],
        priority,
        retries: job.retries,
        maxRuntime: job.maxRuntime,
        idleTimeout: job.idleTimeout,
        requestTimeout: job.requestTimeout && { ...job.requestTimeout },
        dependencies,
        command: job.command && render(job.command, value),
        env: sortedRecord(job.env.map(([k, v]) => [k, render(v, value)])),
        artifacts: [...job.artifacts],
        chunk,
        dummy: job.dummy && { ...job.dummy },
        breakpoint: job.breakpoint && { approvers: [...job.breakpoint.approvers] },
        timer: job.timer && { ...job.timer },
        notify: job.notify && {
          comment: job.notify.comment && render(job.notify.comment, value),
          webhook: job.notify.webhook,
        },
        trigger: job.trigger && { ...job.trigger },
        source: { file: job.where.file, line: job.where.line, column: job.where.column },
      });
    });
  }
  specs.sort((a, b) => compare(a.label, b.label));
  return {
    spec: {
      version: GRAPH_SPEC_VERSION,
      graph: name,
      event: { type: event.type, branch: event.branch, sha: event.sha, changedFiles },
      defines: sortedRecord(defines),
      jobs: specs,
    },
    diagnostics,
  };
}

/** Builds one named graph, whatever the schedulers say: for `trigger` and `api` events that name it. */
export function buildGraph(
  definitions: Definitions,
  graph: string,
  event: DefinitionsEvent,
): { spec: GraphSpec | undefined; diagnostics: Diagnostic[] } {
  const { spec, diagnostics } = build(definitions, graph, event, 'event');
  return {
    spec: hasErrors(diagnostics) ? undefined : spec,
    diagnostics: tidyDiagnostics(diagnostics),
  };
}

/** Builds every graph the event's schedulers select. With any error, no spec. */
export function buildGraphs(
  definitions: Definitions,
  event: DefinitionsEvent,
): { specs: GraphSpec[]; diagnostics: Diagnostic[] } {
  const specs: GraphSpec[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const name of selectGraphs(definitions, event)) {
    const built = build(definitions, name, event, 'event');
    diagnostics.push(...built.diagnostics);
    if (built.spec) specs.push(built.spec);
  }
  return { specs: hasErrors(diagnostics) ? [] : specs, diagnostics: tidyDiagnostics(diagnostics) };
}

/** Loads the files and builds the event's graphs: loadDefinitions, then buildGraphs. */
export function generateGraphs(
  files: readonly SourceFile[],
  event: DefinitionsEvent,
): { specs: GraphSpec[]; diagnostics: Diagnostic[] } {
  const loaded = loadAll(files);
  // Built even after load errors, to report the graphs' own mistakes in the same pass.
  const built = buildGraphs(loaded.definitions, event);
  const diagnostics = tidyDiagnostics([...loaded.diagnostics, ...built.diagnostics]);
  return { specs: hasErrors(diagnostics) ? [] : built.specs, diagnostics };
}

/** What checkDefinitions builds graphs for: any branch, no event details. */
const checkEvent: DefinitionsEvent = {
  type: 'api',
  branch: '',
  sha: '0'.repeat(40),
  changedFiles: null,
};

/**
 * Everything that can be checked without an event: the files, names,
 * assertion files, and every graph a scheduler names or nothing includes,
 * built with its includes (so cycles and unknown jobs anywhere are found;
 * a graph only ever included is checked as part of its includers, since
 * its jobs may need theirs).
 */
export function checkDefinitions(files: readonly SourceFile[]): Diagnostic[] {
  const { definitions, diagnostics } = loadAll(files, { tests: true });
  const included = new Set(
    [...definitions.graphs.values()].flatMap((g) => g.includes.map((i) => i.graph)),
  );
  const scheduled = new Set(definitions.schedulers.map((s) => s.graph));
  const all = [...diagnostics];
  for (const name of definitions.graphs.keys()) {
    if (scheduled.has(name) || !included.has(name))
      all.push(...build(definitions, name, checkEvent, 'check').diagnostics);
  }
  return tidyDiagnostics(all);
}
