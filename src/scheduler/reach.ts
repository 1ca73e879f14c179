/**
 * The part of a stored graph that one event reaches, loaded on demand so that
 * applying an event costs time in proportion to the jobs it touches, never to
 * the size of the graph.
 *
 * planEvent needs a spec and a status reader. Here the spec holds only loaded
 * jobs: *full* ones (every upstream loaded too, so their edges can be
 * evaluated) and *boundary* ones (loaded only so that a full job can read
 * their status; their own dependencies are left out of the partial spec).
 * A plan is trusted only when every job it moves is full and every job it
 * completes is *closed* (all its dependents loaded): otherwise the missing
 * jobs are loaded and the event planned again. Planning is pure, so planning
 * again is safe; each round loads one more level of the cascade.
 *
 * Chunks of a range job (rows with a parent) list the range job's
 * dependencies in their spec, for the minions, but the state machine never
 * sees them: a chunk exists only once those were met, and its range job, not
 * the state machine, decides when it runs again (src/scheduler/server-jobs.ts).
 */
import { compareLabels } from '../graph/model.js';
import {
  planEvent,
  type EventPlan,
  type GraphEvent,
  type JobReason,
  type JobStatus,
} from '../graph/state-machine.js';
import type { GraphRow, JobRow, SchedulerQueries } from '../db/scheduler-store.js';
import type { GraphSpec, JobSpec } from '../lib/graph-spec.js';

const reasons: ReadonlySet<string> = new Set<JobReason>([
  'path-filter',
  'dependency-result',
  'request-timeout',
  'max-runtime',
  'idle-timeout',
  'claim-expired',
  'minion-shutdown',
  'user-cancel',
  'superseded',
]);

function isReason(reason: string | null): reason is JobReason {
  return reason !== null && reasons.has(reason);
}

/** A stored job's status, as the state machine sees it. */
export function statusOf(row: Pick<JobRow, 'state' | 'result' | 'reason'>): JobStatus {
  if (row.state !== 'done') return { state: row.state, result: null, reason: null };
  // A done row always has a result (the scheduler writes them together).
  return {
    state: 'done',
    result: row.result ?? 'exception',
    reason: isReason(row.reason) ? row.reason : null,
  };
}

export class Reach {
  readonly rows = new Map<string, JobRow>();
  private readonly full = new Set<string>();
  private readonly closed = new Set<string>();

  constructor(
    private readonly queries: SchedulerQueries,
    private readonly graph: GraphRow,
  ) {}

  private add(rows: readonly JobRow[]): void {
    for (const row of rows) if (!this.rows.has(row.label)) this.rows.set(row.label, row);
  }

  private async load(labels: Iterable<string>): Promise<void> {
    const missing = [...new Set(labels)].filter((label) => !this.rows.has(label));
    if (missing.length > 0) this.add(await this.queries.lockJobsByLabel(this.graph.id, missing));
  }

  /** Loads the jobs and all their upstreams. */
  async makeFull(labels: Iterable<string>): Promise<void> {
    const wanted = [...labels].filter((label) => !this.full.has(label));
    if (wanted.length === 0) return;
    await this.load(wanted);
    const upstreams: string[] = [];
    for (const label of wanted) {
      const row = this.row(label);
      if (row.parentJobId !== null) continue;
      for (const dep of row.definition.dependencies) upstreams.push(dep.job);
    }
    await this.load(upstreams);
    for (const label of wanted) this.full.add(label);
  }

  /** Loads the jobs' direct dependents, full. */
  async close(labels: Iterable<string>): Promise<void> {
    const wanted = [...labels].filter((label) => !this.closed.has(label));
    if (wanted.length === 0) return;
    await this.makeFull(wanted);
    const dependents = await this.queries.lockDependents(wanted.map((l) => this.row(l).id));
    this.add(dependents);
    await this.makeFull(dependents.map((row) => row.label));
    for (const label of wanted) this.closed.add(label);
  }

  /**
   * The job, full and closed, in one statement (what a run's end reads):
   * its upstreams, its dependents and theirs. Its row; undefined when there
   * is no such job in the graph.
   */
  async closeAround(jobId: number): Promise<JobRow | undefined> {
    const rows = await this.queries.lockNeighbourhood(jobId);
    this.add(rows);
    const job = rows.find((row) => row.id === jobId);
    if (!job || job.graphId !== this.graph.id) return undefined;
    // Stored edges are the definitions' dependencies (a chunk's are its range job's).
    for (const row of rows) {
      if (row.definition.dependencies.some((dep) => dep.job === job.label))
        this.full.add(row.label);
    }
    this.full.add(job.label);
    this.closed.add(job.label);
    return job;
  }

  /**
   * Whether a job the event leaves open (blocked, pending or running) is
   * among the loaded rows: then the graph is not done, and nothing need ask.
   */
  leavesOpen(plan: EventPlan): boolean {
    const after = new Map(plan.transitions.map((t) => [t.job, t.to.state]));
    for (const row of this.rows.values()) {
      const state = after.get(row.label) ?? row.state;
      if (state === 'blocked' || state === 'pending' || state === 'running') return true;
    }
    return false;
  }

  /** The job and every descendant, full and closed: what a retrigger walks. */
  async descendants(label: string): Promise<void> {
    await this.makeFull([label]);
    const rows = await this.queries.lockDescendants(this.row(label).id);
    this.add(rows);
    const labels = [label, ...rows.map((row) => row.label)];
    await this.makeFull(labels);
    // The set is closed under "dependent of", so each member's dependents are loaded.
    for (const at of labels) this.closed.add(at);
  }

  /** The whole graph: for a cancel of everything. */
  async everything(): Promise<void> {
    this.add(await this.queries.lockAllJobs(this.graph.id));
    for (const label of this.rows.keys()) {
      this.full.add(label);
      this.closed.add(label);
    }
  }

  row(label: string): JobRow {
    const row = this.rows.get(label);
    // Callers name jobs they loaded; a dangling dependency would have failed checkGraph.
    if (!row) throw new Error(`job "${label}" of graph ${this.graph.id} is not loaded`);
    return row;
  }

  private spec(): GraphSpec {
    const jobs: JobSpec[] = [...this.rows.values()]
      .sort((a, b) => compareLabels(a.label, b.label))
      .map((row) =>
        this.full.has(row.label) && row.parentJobId === null
          ? row.definition
          : { ...row.definition, dependencies: [] },
      );
    return { ...this.graph.spec, jobs };
  }

  /** Plans the event over loaded rows, loading more until the plan is sound. */
  async plan(event: GraphEvent): Promise<EventPlan> {
    for (;;) {
      const plan = planEvent(
        this.spec(),
        (label) => {
          const row = this.rows.get(label);
          return row && statusOf(row);
        },
        event,
      );
      const partial = plan.transitions.filter((t) => !this.full.has(t.job)).map((t) => t.job);
      const open = plan.transitions
        .filter((t) => t.to.state === 'done' && !this.closed.has(t.job))
        .map((t) => t.job);
      if (partial.length === 0 && open.length === 0) return plan;
      await this.makeFull(partial);
      await this.close(open);
    }
  }
}
