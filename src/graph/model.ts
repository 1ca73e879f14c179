/**
 * The graph model: well-formedness of a graph spec, its stable topological
 * order, and the index (dependents, positions) the state machine walks.
 *
 * Pure. Specs are values: the index is cached per spec object, so a spec must
 * not be mutated once it has been handed to this module.
 */
import { TowerError } from '../lib/errors.js';
import {
  GRAPH_SPEC_VERSION,
  defaultCondition,
  finishedResults,
  jobResults,
  type GraphSpec,
  type JobResult,
  type JobSpec,
} from '../lib/graph-spec.js';

/** One well-formedness problem; `job` is null for a problem of the whole graph. */
export type GraphProblem = { job: string | null; message: string };

/** The spec cannot be processed: duplicate labels, unknown or self dependencies, cycles. */
export class InvalidGraphError extends TowerError {
  override readonly name: string = 'InvalidGraphError';
  constructor(
    readonly graph: string,
    readonly problems: readonly GraphProblem[],
  ) {
    super(`Invalid graph ${graph}:\n${problems.map((p) => `  ${problemText(p)}`).join('\n')}`);
  }
}

/** The spec has a cycle; `cycle` starts and ends with the same label. */
export class GraphCycleError extends InvalidGraphError {
  override readonly name = 'GraphCycleError';
  constructor(
    graph: string,
    /** Never empty. */
    readonly cycle: readonly string[],
  ) {
    super(graph, [{ job: cycle[0]!, message: cycleMessage(cycle) }]);
  }
}

/** `job: message`, or `(graph): message` for a problem of the whole graph. */
export function problemText(problem: GraphProblem): string {
  return `${problem.job ?? '(graph)'}: ${problem.message}`;
}

/** Arrows point from a job to one that depends on it, as edges do in the DOT rendering. */
export function cycleMessage(cycle: readonly string[]): string {
  return `cycle: ${cycle.join(' → ')}`;
}

/** Code-unit order: the same everywhere, unlike localeCompare. */
export function compareLabels(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * How a condition reads in renderings: null for the default (success or
 * warning), `finished`, `any`, or the results themselves.
 */
export function conditionName(results: readonly JobResult[]): string | null {
  const set = new Set(results);
  const same = (other: readonly JobResult[]) =>
    set.size === other.length && other.every((r) => set.has(r));
  if (same(defaultCondition)) return null;
  if (same(finishedResults)) return 'finished';
  if (same(jobResults)) return 'any';
  return results.length === 0 ? '(none)' : results.join(', ');
}

// ---------------------------------------------------------------------------
// Structure

/** What the raw job list says, without trusting it to be well formed. */
type Structure = {
  jobs: Map<string, JobSpec>;
  problems: GraphProblem[];
  /** Label → labels of the jobs that depend on it (known labels only, self-loops left out). */
  dependents: Map<string, string[]>;
  selfDependent: string[];
};

function structure(spec: GraphSpec): Structure {
  const jobs = new Map<string, JobSpec>();
  const problems: GraphProblem[] = [];
  const duplicates = new Set<string>();
  for (const job of spec.jobs) {
    if (!jobs.has(job.label)) jobs.set(job.label, job);
    else if (!duplicates.has(job.label)) {
      duplicates.add(job.label);
      problems.push({ job: job.label, message: `duplicate label "${job.label}"` });
    }
  }
  const dependents = new Map<string, string[]>();
  for (const label of jobs.keys()) dependents.set(label, []);
  const selfDependent: string[] = [];
  for (const job of jobs.values()) {
    const seen = new Set<string>();
    for (const dep of job.dependencies) {
      if (seen.has(dep.job)) {
        problems.push({ job: job.label, message: `depends on "${dep.job}" more than once` });
        continue;
      }
      seen.add(dep.job);
      if (dep.job === job.label) {
        selfDependent.push(job.label);
        problems.push({ job: job.label, message: 'depends on itself' });
      } else {
        const list = dependents.get(dep.job);
        if (list) list.push(job.label);
        else problems.push({ job: job.label, message: `depends on unknown job "${dep.job}"` });
      }
    }
  }
  return { jobs, problems, dependents, selfDependent };
}

/**
 * One cycle per strongly connected component of more than one job (Tarjan,
 * iterative so that long chains do not overflow the stack). Each cycle is the
 * shortest one through the component's smallest label, so messages are stable.
 */
function findCycles(dependents: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of dependents.keys()) {
    if (index.has(root)) continue;
    const frames: { label: string; next: number }[] = [{ label: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const out = dependents.get(frame.label)!;
      if (frame.next < out.length) {
        const to = out[frame.next++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          frames.push({ label: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.label, Math.min(low.get(frame.label)!, index.get(to)!));
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent) low.set(parent.label, Math.min(low.get(parent.label)!, low.get(frame.label)!));
      if (low.get(frame.label) === index.get(frame.label)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.label);
        if (component.length > 1) components.push(component);
      }
    }
  }
  return components
    .map((component) => shortestCycle(component, dependents))
    .sort((a, b) => compareLabels(a[0]!, b[0]!));
}

function shortestCycle(
  component: readonly string[],
  dependents: ReadonlyMap<string, readonly string[]>,
): string[] {
  const members = new Set(component);
  const start = [...component].sort(compareLabels)[0]!;
  // Breadth-first from the start back to it, inside the component only.
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const label = queue[i]!;
    for (const to of dependents.get(label)!) {
      if (to === start) {
        const path: string[] = [];
        for (let at = label; at !== start; at = previous.get(at)!) path.push(at);
        return [start, ...path.reverse(), start];
      }
      if (members.has(to) && !previous.has(to)) {
        previous.set(to, label);
        queue.push(to);
      }
    }
  }
  // Unreachable: every member of a strongly connected component lies on a cycle through the start.
  /* v8 ignore next -- @preserve */
  throw new Error(`no cycle through ${start}`);
}

// ---------------------------------------------------------------------------
// Well-formedness

const settingsKinds = ['dummy', 'breakpoint', 'timer', 'notify', 'trigger'] as const;

function settingsProblems(job: JobSpec): string[] {
  const problems: string[] = [];
  for (const kind of settingsKinds) {
    if (job.kind === kind && job[kind] === null)
      problems.push(`${kind} job has no ${kind} settings`);
    if (job.kind !== kind && job[kind] !== null)
      problems.push(`${job.kind} job has ${kind} settings`);
  }
  if (job.kind === 'command') {
    if (!job.command) problems.push('command job has no command');
  } else {
    if (job.command !== null) problems.push(`${job.kind} job has a command`);
    // Only command jobs go to minions; tags on anything else would never be used.
    if (job.requires.length > 0) problems.push(`${job.kind} job requires minion tags`);
  }
  if (job.timer && job.timer.delaySeconds === null && job.timer.at === null) {
    problems.push('timer job has neither a delay nor a time');
  }
  const chunk = job.chunk;
  if (
    chunk &&
    'index' in chunk &&
    !(chunk.count >= 1 && chunk.index >= 1 && chunk.index <= chunk.count)
  ) {
    problems.push(`chunk ${chunk.index} of ${chunk.count} is out of range`);
  }
  if (chunk && 'min' in chunk && !(chunk.min >= 1 && chunk.min <= chunk.max)) {
    problems.push(`chunk range ${chunk.min}–${chunk.max} is empty or starts below 1`);
  }
  return problems;
}

/**
 * Every well-formedness problem of a spec, in a stable order: the version,
 * then each job's structural and settings problems, then cycles. An empty
 * list means the state machine and the renderers can use the spec.
 */
export function checkGraph(spec: GraphSpec): GraphProblem[] {
  const problems: GraphProblem[] = [];
  if ((spec.version as number) !== GRAPH_SPEC_VERSION) {
    problems.push({
      job: null,
      message: `unsupported graph spec version ${String(spec.version)} (this Tower reads version ${GRAPH_SPEC_VERSION})`,
    });
  }
  const found = structure(spec);
  problems.push(...found.problems);
  for (const job of spec.jobs) {
    if (job.label === '') problems.push({ job: '', message: 'empty label' });
    for (const dep of job.dependencies) {
      if (dep.results.length === 0) {
        problems.push({
          job: job.label,
          message: `dependency on "${dep.job}" has an empty condition list, so it can never be satisfied`,
        });
      }
    }
    for (const message of settingsProblems(job)) problems.push({ job: job.label, message });
  }
  for (const cycle of findCycles(found.dependents)) {
    problems.push({ job: cycle[0]!, message: cycleMessage(cycle) });
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Order

/** A binary min-heap of labels, for Kahn's algorithm. */
class LabelHeap {
  private readonly items: string[] = [];
  get size(): number {
    return this.items.length;
  }
  push(label: string): void {
    const items = this.items;
    items.push(label);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compareLabels(items[parent]!, label) <= 0) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = label;
  }
  pop(): string {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const right = left + 1;
        const child =
          right < items.length && compareLabels(items[right]!, items[left]!) < 0 ? right : left;
        if (compareLabels(items[child]!, last) >= 0) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

function order(spec: GraphSpec, found: Structure): string[] {
  // Self-dependencies are reported as such by checkGraph; here they are the shortest cycles.
  if (found.problems.length > found.selfDependent.length) {
    throw new InvalidGraphError(spec.graph, found.problems);
  }
  const self = found.selfDependent[0];
  if (self !== undefined) throw new GraphCycleError(spec.graph, [self, self]);
  const waiting = new Map<string, number>();
  const heap = new LabelHeap();
  for (const job of found.jobs.values()) {
    waiting.set(job.label, job.dependencies.length);
    if (job.dependencies.length === 0) heap.push(job.label);
  }
  const result: string[] = [];
  while (heap.size > 0) {
    const label = heap.pop();
    result.push(label);
    for (const dependent of found.dependents.get(label)!) {
      const left = waiting.get(dependent)! - 1;
      waiting.set(dependent, left);
      if (left === 0) heap.push(dependent);
    }
  }
  if (result.length < found.jobs.size) {
    throw new GraphCycleError(spec.graph, findCycles(found.dependents)[0]!);
  }
  return result;
}

/**
 * Labels in dependency order; among jobs that are ready together, the
 * smallest label first (Kahn's algorithm), so the order is stable.
 * Throws GraphCycleError on a cycle (a self-dependency is the cycle `a → a`)
 * and InvalidGraphError on duplicate labels or unknown dependencies.
 */
export function topologicalOrder(spec: GraphSpec): string[] {
  return [...graphIndex(spec).order];
}

// ---------------------------------------------------------------------------
// Index

/** What the state machine needs to touch only the jobs an event concerns. */
export type GraphIndex = {
  jobs: ReadonlyMap<string, JobSpec>;
  /** Label → labels of the jobs that depend on it, in spec order. */
  dependents: ReadonlyMap<string, readonly string[]>;
  /** Labels in topological order. */
  order: readonly string[];
  /** Label → its place in `order`. */
  position: ReadonlyMap<string, number>;
};

const indexes = new WeakMap<GraphSpec, GraphIndex>();

/**
 * The index of a spec, built once per spec object in O(jobs + edges).
 * Throws like topologicalOrder on a spec the state machine cannot run;
 * settings problems (checkGraph) do not stop it.
 */
export function graphIndex(spec: GraphSpec): GraphIndex {
  const cached = indexes.get(spec);
  if (cached) return cached;
  const found = structure(spec);
  const labels = order(spec, found);
  const index: GraphIndex = {
    jobs: found.jobs,
    dependents: found.dependents,
    order: labels,
    position: new Map(labels.map((label, i) => [label, i])),
  };
  indexes.set(spec, index);
  return index;
}

/** Label → labels of its direct dependents (cached with the index). */
export function dependents(spec: GraphSpec): ReadonlyMap<string, readonly string[]> {
  return graphIndex(spec).dependents;
}

/**
 * Jobs that are effectively inactive: inactive themselves or downstream of an
 * inactive job, since an active job must never wait on one that will not run.
 * Tolerates malformed specs (renderers draw those too).
 */
export function inactiveJobs(spec: GraphSpec): Set<string> {
  const { dependents: out } = structure(spec);
  const inactive = new Set<string>();
  const queue = spec.jobs.filter((job) => job.inactive).map((job) => job.label);
  for (const label of queue) inactive.add(label);
  for (let i = 0; i < queue.length; i++) {
    for (const dependent of out.get(queue[i]!)!) {
      if (!inactive.has(dependent)) {
        inactive.add(dependent);
        queue.push(dependent);
      }
    }
  }
  return inactive;
}
