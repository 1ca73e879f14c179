/**
 * The job state machine: what becomes runnable,
 * skipped or reopened when something happens to a job. Pure: it returns the
 * transitions and the new state, and the scheduler persists them.
 *
 * Semantics worth knowing:
 * - A job is *effectively inactive* when it or any upstream is inactive, so an
 *   active job never waits on one that will not run. Inactive wins over
 *   filtered: a filtered job that is activated is then skipped (path-filter).
 * - An edge is satisfied when its upstream is done with a result in the
 *   edge's list, unsatisfiable when it is done with another result. A job with
 *   an unsatisfiable edge is skipped at once (dependency-result), even while
 *   other upstreams still run.
 * - Dummy jobs complete as soon as they become pending (their forced result,
 *   or success), so graphs can be exercised without minions.
 * - A retrigger reopens the job and every descendant that is done or pending,
 *   walking through running and blocked descendants too. Left alone: running
 *   jobs (their run goes on), inactive jobs, and jobs skipped by the path
 *   filter (their result never depended on upstream results, and the walk
 *   does not continue past them).
 * - A run in progress is never interrupted by a retrigger upstream: it ends and
 *   its result counts. Only its next run (after a retry) waits for the new
 *   upstream result.
 * - A cancel without a job ends every active job that is not done; inactive
 *   jobs stay inactive, as they were never going to run.
 * - Transitions are listed in the order they happen; one event may move a job
 *   more than once (a dummy: blocked → pending → done).
 */
import { type GraphSpec, type JobResult, type JobSpec } from '../lib/graph-spec.js';
import { TowerError } from '../lib/errors.js';
import { graphIndex, inactiveJobs, type GraphIndex } from './model.js';

export type JobState = 'inactive' | 'blocked' | 'pending' | 'running' | 'done';

export type JobReason =
  | 'path-filter'
  | 'dependency-result'
  | 'request-timeout'
  | 'max-runtime'
  | 'idle-timeout'
  | 'claim-expired'
  | 'minion-shutdown'
  | 'user-cancel'
  | 'superseded';

/** Where a job is in its life; a result and a reason only once it is done. */
export type JobStatus =
  | {
      readonly state: 'inactive' | 'blocked' | 'pending' | 'running';
      readonly result: null;
      readonly reason: null;
    }
  | { readonly state: 'done'; readonly result: JobResult; readonly reason: JobReason | null };

/**
 * Every job's status, keyed by label, in spec order. A Map rather than a
 * record: labels are arbitrary strings (no prototype keys to trip on) and
 * lookups are cheap. Treat it as immutable: applyEvent returns a new one.
 */
export type GraphState = ReadonlyMap<string, JobStatus>;

export type Transition = { job: string; from: JobStatus; to: JobStatus };

export type GraphEvent =
  /** A minion claimed the pending job. */
  | { type: 'started'; job: string }
  /** The run ended; a server-side job (not a command) may finish straight from pending. */
  | { type: 'finished'; job: string; result: JobResult; reason?: JobReason | null }
  /**
   * An infrastructure failure: the job waits for another run (pending, or blocked
   * when an upstream was retriggered meanwhile); descendants are not reopened.
   */
  | { type: 'retry'; job: string }
  /** A new run of a done job; done or pending descendants are reopened. */
  | { type: 'retrigger'; job: string }
  /** Backfill: the inactive job and the inactive ancestors it needs. */
  | { type: 'activate'; job: string }
  /** One job, or without `job` every active job that is not done. */
  | { type: 'cancel'; job?: string; reason?: 'user-cancel' | 'superseded' }
  | { type: 'timeout'; job: string; timeout: 'request' | 'max-runtime' | 'idle' };

/** Reads one job's status; lets the caller hold the state anywhere (rows, a Map). */
export type StateReader = (label: string) => JobStatus | undefined;

/** What an event does: transitions in order, or none and why the event was refused. */
export type EventPlan = { transitions: Transition[]; refused?: string };

export type EventOutcome = { state: GraphState; transitions: Transition[]; refused?: string };

export type GraphResult = 'success' | 'failure' | 'cancelled';

const INACTIVE: JobStatus = { state: 'inactive', result: null, reason: null };
const BLOCKED: JobStatus = { state: 'blocked', result: null, reason: null };
const PENDING: JobStatus = { state: 'pending', result: null, reason: null };
const RUNNING: JobStatus = { state: 'running', result: null, reason: null };

function done(result: JobResult, reason: JobReason | null): JobStatus {
  return { state: 'done', result, reason };
}

/** The state and the spec do not belong together: a programming error, not a user's. */
export class GraphStateError extends TowerError {
  override readonly name = 'GraphStateError';
}

/**
 * One event being worked out: reads go through the changes made so far, and
 * only jobs the event reaches are read, so the cost follows the event's reach
 * (a job's dependents and their dependencies), not the graph's size.
 */
class Step {
  readonly changes = new Map<string, JobStatus>();
  readonly transitions: Transition[] = [];
  /** Jobs to evaluate because an upstream completed. */
  private readonly queue: string[] = [];

  constructor(
    readonly index: GraphIndex,
    private readonly read: StateReader,
  ) {}

  status(label: string): JobStatus {
    const status = this.changes.get(label) ?? this.read(label);
    if (!status) throw new GraphStateError(`the state has no status for job "${label}"`);
    return status;
  }

  job(label: string): JobSpec {
    return this.index.jobs.get(label)!;
  }

  set(label: string, to: JobStatus): void {
    const from = this.status(label);
    this.changes.set(label, to);
    this.transitions.push({ job: label, from, to });
  }

  complete(label: string, result: JobResult, reason: JobReason | null): void {
    this.set(label, done(result, reason));
    this.queue.push(...this.index.dependents.get(label)!);
  }

  /** Whether the job's edges all hold, one can no longer hold, or it must wait. */
  edges(job: JobSpec): 'satisfied' | 'unsatisfiable' | 'waiting' {
    let waiting = false;
    for (const dep of job.dependencies) {
      const upstream = this.status(dep.job);
      if (upstream.state !== 'done') waiting = true;
      else if (!dep.results.includes(upstream.result)) return 'unsatisfiable';
    }
    return waiting ? 'waiting' : 'satisfied';
  }

  /** A job (re)enters the graph: it becomes pending, is skipped at once, or waits blocked. */
  open(label: string): void {
    const job = this.job(label);
    switch (this.edges(job)) {
      case 'satisfied':
        this.set(label, PENDING);
        if (job.kind === 'dummy') this.complete(label, job.dummy?.result ?? 'success', null);
        return;
      case 'unsatisfiable':
        this.complete(label, 'skipped', 'dependency-result');
        return;
      case 'waiting':
        if (this.status(label).state !== 'blocked') this.set(label, BLOCKED);
        return;
    }
  }

  /** Evaluates blocked jobs whose upstreams completed, until nothing more moves. */
  drain(): void {
    for (let i = 0; i < this.queue.length; i++) {
      const label = this.queue[i]!;
      if (this.status(label).state === 'blocked') this.open(label);
    }
    this.queue.length = 0;
  }

  /** Done-or-pending descendants to reopen, in topological order (see the module comment). */
  reopenable(label: string): string[] {
    const seen = new Set<string>();
    const reopen: string[] = [];
    const walk = [...this.index.dependents.get(label)!];
    for (let i = 0; i < walk.length; i++) {
      const at = walk[i]!;
      if (seen.has(at)) continue;
      seen.add(at);
      const status = this.status(at);
      if (status.state === 'inactive' || status.reason === 'path-filter') continue;
      if (status.state === 'done' || status.state === 'pending') reopen.push(at);
      walk.push(...this.index.dependents.get(at)!);
    }
    return this.sorted(reopen);
  }

  /** The job and its inactive ancestors, in topological order. */
  inactiveAncestors(label: string): string[] {
    const found = new Set([label]);
    const walk = [label];
    for (let i = 0; i < walk.length; i++) {
      for (const dep of this.job(walk[i]!).dependencies) {
        if (!found.has(dep.job) && this.status(dep.job).state === 'inactive') {
          found.add(dep.job);
          walk.push(dep.job);
        }
      }
    }
    return this.sorted([...found]);
  }

  private sorted(labels: string[]): string[] {
    const position = this.index.position;
    return labels.sort((a, b) => position.get(a)! - position.get(b)!);
  }
}

function describe(status: JobStatus): string {
  if (status.state !== 'done') return status.state;
  return `done (${status.result}${status.reason ? `, ${status.reason}` : ''})`;
}

/** Works the event out on `step`; returns why it was refused, or null. */
function perform(step: Step, spec: GraphSpec, event: GraphEvent): string | null {
  if (event.type === 'cancel' && event.job === undefined) {
    // Every active job that is not done ends at once: nothing is left to propagate to.
    const reason = event.reason ?? 'user-cancel';
    for (const job of spec.jobs) {
      const state = step.status(job.label).state;
      if (state !== 'inactive' && state !== 'done') step.set(job.label, done('cancelled', reason));
    }
    return step.transitions.length > 0 ? null : 'nothing to cancel: every active job is done';
  }
  // Every other event names its job (a cancel of everything returned above).
  const label = event.job!;
  if (!step.index.jobs.has(label)) return `unknown job "${label}"`;
  const status = step.status(label);
  const refuse = (wanted: string) =>
    `${event.type} needs ${wanted}, but job "${label}" is ${describe(status)}`;

  switch (event.type) {
    case 'started':
      if (status.state !== 'pending') return refuse('a pending job');
      step.set(label, RUNNING);
      return null;
    case 'finished':
      if (
        status.state !== 'running' &&
        !(status.state === 'pending' && step.job(label).kind !== 'command')
      ) {
        return refuse('a running job (or a pending job that does not run on a minion)');
      }
      step.complete(label, event.result, event.reason ?? null);
      break;
    case 'retry':
      if (status.state !== 'running') return refuse('a running job');
      // Usually back to pending; but if an upstream was retriggered while this ran,
      // the next run waits for (or is skipped by) its new result.
      step.open(label);
      break;
    case 'retrigger': {
      if (status.state !== 'done') return refuse('a done job');
      const reopen = step.reopenable(label);
      for (const at of reopen) step.set(at, BLOCKED);
      step.open(label);
      // Reopened jobs are evaluated in order, after the job: each waits, runs or is skipped.
      for (const at of reopen) step.open(at);
      break;
    }
    case 'activate':
      if (status.state !== 'inactive') return refuse('an inactive job');
      for (const at of step.inactiveAncestors(label)) {
        if (step.job(at).filtered) step.complete(at, 'skipped', 'path-filter');
        else step.open(at);
      }
      break;
    case 'cancel':
      if (status.state === 'inactive' || status.state === 'done') {
        return refuse('a job that is blocked, pending or running');
      }
      step.complete(label, 'cancelled', event.reason ?? 'user-cancel');
      break;
    case 'timeout':
      if (event.timeout === 'request') {
        if (status.state !== 'pending') return refuse('a pending job');
        const result = step.job(label).requestTimeout?.result ?? 'timed-out';
        step.complete(label, result, 'request-timeout');
      } else {
        if (status.state !== 'running') return refuse('a running job');
        step.complete(
          label,
          'timed-out',
          event.timeout === 'idle' ? 'idle-timeout' : 'max-runtime',
        );
      }
      break;
  }
  step.drain();
  return null;
}

/**
 * The statuses a graph starts with, in O(jobs + edges): inactive, skipped by
 * the path filter, pending (dummies already done), skipped because a
 * dependency can no longer be satisfied, or blocked. Throws InvalidGraphError
 * (GraphCycleError for a cycle) on a spec it cannot order; run checkGraph first.
 */
export function initialState(spec: GraphSpec): GraphState {
  const index = graphIndex(spec);
  const inactive = inactiveJobs(spec);
  const start = new Map<string, JobStatus>();
  for (const job of spec.jobs) start.set(job.label, inactive.has(job.label) ? INACTIVE : BLOCKED);
  const step = new Step(index, (label) => start.get(label));
  // In topological order every upstream is final before its dependents are opened.
  for (const label of index.order) {
    if (inactive.has(label)) continue;
    if (step.job(label).filtered) step.complete(label, 'skipped', 'path-filter');
    else step.open(label);
  }
  step.drain();
  for (const [label, status] of step.changes) start.set(label, status);
  return start;
}

/**
 * Works out an event against a state held anywhere: only the jobs the event
 * reaches are read. The scheduler can read rows on demand and write back the
 * last `to` of each job. Throws GraphStateError when a status it needs is missing.
 */
export function planEvent(spec: GraphSpec, read: StateReader, event: GraphEvent): EventPlan {
  const step = new Step(graphIndex(spec), read);
  const refused = perform(step, spec, event);
  return refused === null ? { transitions: step.transitions } : { transitions: [], refused };
}

/**
 * Applies an event and returns the new state; the input state is not changed.
 * The work follows the event's reach; the one whole-graph cost is copying the
 * Map (a flat clone) so that the function stays pure. A refused event returns
 * the same state, no transitions, and the reason.
 */
export function applyEvent(spec: GraphSpec, state: GraphState, event: GraphEvent): EventOutcome {
  const step = new Step(graphIndex(spec), (label) => state.get(label));
  const refused = perform(step, spec, event);
  if (refused !== null) return { state, transitions: [], refused };
  const next = new Map(state);
  for (const [label, status] of step.changes) next.set(label, status);
  return { state: next, transitions: step.transitions };
}

/** No job is pending or running: nothing will move until someone acts. */
export function isSettled(state: GraphState): boolean {
  for (const status of state.values()) {
    if (status.state === 'pending' || status.state === 'running') return false;
  }
  return true;
}

/** Labels of the pending jobs, in state order. */
export function runnable(state: GraphState): string[] {
  const labels: string[] = [];
  for (const [label, status] of state) if (status.state === 'pending') labels.push(label);
  return labels;
}

/**
 * The graph's result once every active job is done (inactive jobs do not
 * count), else null: `failure` if any job failed, raised an exception or
 * timed out; otherwise `cancelled` if any was cancelled; otherwise `success`
 * (warnings and skips included: a skip is the consequence of an upstream's
 * result, which is counted where it happened).
 */
export function graphResult(spec: GraphSpec, state: GraphState): GraphResult | null {
  let cancelled = false;
  let failed = false;
  for (const job of spec.jobs) {
    const status = state.get(job.label);
    if (!status) throw new GraphStateError(`the state has no status for job "${job.label}"`);
    if (status.state === 'inactive') continue;
    if (status.state !== 'done') return null;
    if (status.result === 'cancelled') cancelled = true;
    if (
      status.result === 'failure' ||
      status.result === 'exception' ||
      status.result === 'timed-out'
    ) {
      failed = true;
    }
  }
  return failed ? 'failure' : cancelled ? 'cancelled' : 'success';
}
