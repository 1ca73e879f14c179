/**
 * Persistent graph processing: stores
 * graphs, hands pending command jobs to minions with leases, and applies
 * every event through the pure state machine, one transaction per event.
 *
 * Locking: an event takes its graph's row lock first (events of one graph
 * apply one at a time, so two upstreams finishing together cannot both miss
 * each other's result), then the rows it reads, FOR UPDATE, then the
 * minion's row and its warm-cache row when a run ends. Claims lock only the
 * claimed job, with SKIP LOCKED, and never wait for a graph, so no lock
 * cycle can form between claims and events.
 *
 * Wake-ups: after a transaction that made command jobs pending commits,
 * `onClaimable` hears the keys of their tag sets, so that only the claims
 * waiting for those sets wake (src/minions/notifier.ts).
 *
 * Server-side jobs (src/scheduler/server-jobs.ts): dummy jobs complete
 * inside the state machine; timers, breakpoints and notify jobs have no tag
 * set, so no claim takes them, and finish through the same `finished` event
 * (`fireTimers`, `approve`, `runNotifications`). Range chunks materialise
 * when their range job becomes pending (the range job itself has no tag set
 * either). `apply` hands every event's transitions to server-jobs, which
 * applies follow-up events in the same transaction. Trigger jobs (peer
 * clusters) stay pending until the clusters issue.
 */
import { checkGraph, InvalidGraphError } from '../graph/model.js';
import {
  graphResult,
  initialState,
  type EventPlan,
  type GraphEvent,
  type JobReason,
  type JobStatus,
} from '../graph/state-machine.js';
import {
  createSchedulerStore,
  UNTRUSTED_PREFIX,
  type GraphRow,
  type JobRow,
  type JobUpdate,
  type MinionState,
  type NewJob,
  type RunCause,
  type RunEnd,
  type RunRow,
  type SchedulerQueries,
} from '../db/scheduler-store.js';
import type { TowerDb } from '../db/connection.js';
import type { Clock } from '../lib/clock.js';
import { TowerError } from '../lib/errors.js';
import type { GraphSpec, JobResult, JobSpec } from '../lib/graph-spec.js';
import { chunkRange } from '../graph/chunks.js';
import type { Logger } from '../lib/logger.js';
import { createNotifyAdapter, type NotifyPort } from './notify.js';
import { Reach, statusOf } from './reach.js';
import { createServerJobs, type Approver } from './server-jobs.js';

export type SchedulerOptions = {
  db: TowerDb;
  clock: Clock;
  /**
   * Where lease times come from. By default the database's clock (`now()`),
   * so that replicas whose clocks disagree agree on when a lease lapses;
   * tests that move time by hand give their clock.
   */
  leaseClock?: Clock | undefined;
  /**
   * Called after a commit that made command jobs pending, with the keys of
   * their tag sets ('all' when they could not be read). Awaited; must not reject.
   */
  onClaimable?: (tagSetKeys: readonly string[] | 'all') => Promise<void>;
  /** A minion whose runs end with `exception` this many times in a row is quarantined. */
  quarantineAfter?: number;
  /** Where notify jobs' comments and webhooks go; by default createNotifyAdapter({ logger }). */
  notify?: NotifyPort;
  /** Server-side jobs log what they do (chunks materialised, notifications that failed). */
  logger?: Logger;
  /**
   * Called after a commit that made server-side jobs runnable (a notify job
   * pending, a timer due), so that the server passes run at once rather
   * than at their next interval. Must not throw.
   */
  onServerWork?: () => void;
  /** Called after a commit that changed the graph (its check runs may show something new). Must not throw. */
  onGraphChanged?: (graphId: number) => void;
};

export const DEFAULT_QUARANTINE_AFTER = 3;

/** Candidates a claim reads per tag set at first; more when concurrent claims took them all. */
const CANDIDATES_PER_SET = 16;
/** The preferences (warm minion) apply among this many of the best candidates. */
const PREFER_AMONG = 16;

/** The minion may not claim: it is quarantined, retired, or unknown. */
export class InactiveMinionError extends TowerError {
  override readonly name = 'InactiveMinionError';
  constructor(
    readonly minionId: number,
    readonly state: MinionState | undefined,
  ) {
    super(`Minion ${minionId} is ${state ?? 'unknown'} and may not claim jobs`);
  }
}

export type Claim = {
  runId: number;
  jobId: number;
  graphId: number;
  label: string;
  attempt: number;
  cause: RunCause;
  job: JobSpec;
  leaseExpiresAt: Date;
  /** The graph's commit and repository. */
  sha: string;
  repositoryId: number;
};

/** An action on a job that the state machine may refuse; a refusal is data, not an error. */
export type ActionOutcome = { ok: true; transitions: number } | { ok: false; reason: string };

export type JobView = {
  id: number;
  label: string;
  kind: string;
  state: JobRow['state'];
  result: JobRow['result'];
  reason: string | null;
  priority: number;
  retries: number;
  retriesUsed: number;
  pendingSince: Date | null;
  /** A chunk of a range job: the range job's id. */
  parentJobId: number | null;
  /** Fixed or materialised chunks: `{ index, count }`; a range job: `{ min, max }`. */
  chunk: JobSpec['chunk'];
  /** A pending timer: when it fires. */
  dueAt: Date | null;
  /** Where the job is defined in `.tower/`. */
  source: JobSpec['source'];
  runs: RunRow[];
};

export type GraphStatus = {
  graph: GraphRow;
  /** Sorted by label, like the spec. */
  jobs: JobView[];
};

export type GraphPage = GraphStatus & {
  /** Every job of the graph, counted: in all, by state, and the done ones by result. */
  counts: {
    jobs: number;
    states: Partial<Record<JobRow['state'], number>>;
    results: Partial<Record<JobResult, number>>;
  };
  /** Ask for the page after this label; null on the last page. */
  next: string | null;
};

function groupRuns(runs: readonly RunRow[]): Map<number, RunRow[]> {
  const byJob = new Map<number, RunRow[]>();
  for (const run of runs) {
    const list = byJob.get(run.jobId);
    if (list) list.push(run);
    else byJob.set(run.jobId, [run]);
  }
  return byJob;
}

/** Results a minion reports that are infrastructure failures, retried automatically. */
const infrastructureReasons: readonly JobReason[] = ['claim-expired', 'minion-shutdown'];

const after = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);

/**
 * A tag set is its sorted distinct tags; its key joins them with commas.
 * Untrusted graphs' jobs queue apart: their key starts with `untrusted:`.
 */
export function tagSetKey(tags: readonly string[], trust: GraphRow['trust'] = 'trusted'): string {
  const key = [...new Set(tags)].sort().join(',');
  return trust === 'untrusted' ? `${UNTRUSTED_PREFIX}${key}` : key;
}

/**
 * Whether a minion may claim from the tag set with this key: it has every
 * tag, and the set is of its trust's queues (untrusted minions take only
 * untrusted graphs' jobs; trusted and restricted minions only trusted ones).
 * The claim statement applies the same rule in SQL.
 */
export function acceptsTagSet(
  minion: { tags: readonly string[]; trust: 'trusted' | 'untrusted' | 'restricted' },
  key: string,
): boolean {
  const untrusted = key.startsWith(UNTRUSTED_PREFIX);
  if (untrusted !== (minion.trust === 'untrusted')) return false;
  const tags = untrusted ? key.slice(UNTRUSTED_PREFIX.length) : key;
  return tags === '' || tags.split(',').every((tag) => minion.tags.includes(tag));
}

type EventContext = {
  q: SchedulerQueries;
  graph: GraphRow;
  reach: Reach;
  now: Date;
  /** Tag sets of the command jobs this transaction made pending. */
  claimable: Set<number>;
  /** Set when server-side jobs became runnable (a notify job pending, a timer due). */
  serverWork: { due: boolean };
};

/** Per-job changes an event makes beside the status (cause of the next run, retry bookkeeping). */
type Adjust = (label: string, update: JobUpdate, transitions: EventPlan['transitions']) => void;

export function createScheduler({
  db,
  clock,
  leaseClock,
  onClaimable,
  quarantineAfter = DEFAULT_QUARANTINE_AFTER,
  logger,
  notify = createNotifyAdapter({ logger }),
  onServerWork,
  onGraphChanged,
}: SchedulerOptions) {
  const store = createSchedulerStore(db, leaseClock ?? 'database');
  /** Tag set id → key; tag sets never change. */
  const keys = new Map<number, string>();

  /** Tells `onClaimable` (after the commit) which tag sets got pending jobs. */
  async function announce(tagSetIds: ReadonlySet<number>): Promise<void> {
    if (!onClaimable || tagSetIds.size === 0) return;
    let announced: string[] | 'all';
    try {
      const missing = [...tagSetIds].filter((id) => !keys.has(id));
      for (const [id, key] of await store.tagSetKeys(missing)) keys.set(id, key);
      announced = [...tagSetIds].map((id) => keys.get(id)!);
    } catch {
      // The change is committed: waking every waiter is late, never wrong.
      announced = 'all';
    }
    await onClaimable(announced);
  }

  /** Runs `work` with the graph locked; undefined when there is no such graph. */
  async function withGraph<T>(
    graphId: number,
    work: (ctx: EventContext) => Promise<T>,
  ): Promise<T | undefined> {
    const claimable = new Set<number>();
    const serverWork = { due: false };
    const result = await store.transaction(async (q) => {
      const graph = await q.lockGraph(graphId);
      if (!graph) return undefined;
      const reach = new Reach(q, graph);
      return work({ q, graph, reach, now: clock.now(), claimable, serverWork });
    });
    await announce(claimable);
    if (serverWork.due) onServerWork?.();
    if (result !== undefined) onGraphChanged?.(graphId);
    return result;
  }

  /** Plans the event over the loaded reach and writes every transition. */
  async function apply(ctx: EventContext, event: GraphEvent, adjust?: Adjust): Promise<EventPlan> {
    const plan = await ctx.reach.plan(event);
    if (plan.refused !== undefined) return plan;
    const byJob = new Map<string, EventPlan['transitions']>();
    for (const t of plan.transitions) {
      const list = byJob.get(t.job);
      if (list) list.push(t);
      else byJob.set(t.job, [t]);
    }
    const updates: JobUpdate[] = [];
    const ends: RunEnd[] = [];
    for (const [label, transitions] of byJob) {
      const row = ctx.reach.row(label);
      const final = transitions[transitions.length - 1]!.to;
      const entered = transitions.some((t) => t.to.state === 'pending');
      const timeout = row.definition.requestTimeout;
      const update: JobUpdate = {
        id: row.id,
        state: final.state,
        result: final.result,
        reason: final.reason,
        pendingSince: entered ? ctx.now : row.pendingSince,
        requestDeadline:
          final.state !== 'pending'
            ? null
            : entered && timeout
              ? after(ctx.now, timeout.seconds)
              : row.requestDeadline,
        nextCause: row.nextCause,
        retriesUsed: row.retriesUsed,
        avoidMinionId: row.avoidMinionId,
      };
      adjust?.(label, update, transitions);
      updates.push(update);
      if (final.state === 'pending' && entered && row.tagSetId !== null) {
        ctx.claimable.add(row.tagSetId);
      }
      // A run the event ended (cancel, timeout) ends with the job; a finished run has ended already.
      const runEnded = event.type === 'finished' && event.job === label;
      if (
        final.state === 'done' &&
        !runEnded &&
        transitions.some((t) => t.from.state === 'running')
      ) {
        ends.push({ jobId: row.id, result: final.result, reason: final.reason });
      }
    }
    await ctx.q.updateJobs(ctx.graph.id, updates, ctx.now);
    if (ends.length > 0) await ctx.q.endRunningRuns(ends, ctx.now);
    await settle(ctx, plan);
    await serverJobs.afterApply(ctx, plan.transitions);
    return plan;
  }

  /** Keeps the graph's own state in step: reopened, or done with its result. */
  async function settle(ctx: EventContext, plan: EventPlan): Promise<void> {
    const reopened = plan.transitions.some(
      (t) => t.to.state !== 'done' && t.to.state !== 'inactive',
    );
    if (ctx.graph.state === 'done' && reopened) {
      await ctx.q.setGraphState(ctx.graph.id, 'running', null, null);
      return;
    }
    const completed = plan.transitions.some((t) => t.to.state === 'done');
    if (ctx.graph.state === 'running' && completed && !ctx.reach.leavesOpen(plan))
      await finishGraphIfDone(ctx.q, ctx.graph, ctx.now);
  }

  /** Marks the graph done with its result when no active job is open; cheap when one is. */
  async function finishGraphIfDone(q: SchedulerQueries, graph: GraphRow, now: Date) {
    if (graph.state === 'done' || (await q.hasOpenJobs(graph.id))) return;
    // Once per completion, so reading every job here is proportional to the work done.
    const rows = await q.graphJobs(graph.id);
    const spec: GraphSpec = { ...graph.spec, jobs: rows.map((row) => row.definition) };
    const state = new Map<string, JobStatus>(rows.map((row) => [row.label, statusOf(row)]));
    const result = graphResult(spec, state);
    if (result !== null) await q.setGraphState(graph.id, 'done', result, now);
  }

  /**
   * Ends a running run (a minion's report, or a lapsed lease: `lapsed`, which
   * holds only if the lease has not been renewed since) and moves its job on.
   */
  async function endRun(
    runId: number,
    minionId: number | undefined,
    end: { result: JobResult; reason: JobReason | null; exitCode: number | null },
    lapsed = false,
  ): Promise<'ok' | 'refused'> {
    const found = await store.run(runId);
    if (!found) return 'refused';
    const outcome = await withGraph(found.graphId, async (ctx) => {
      const run = await ctx.q.endRunningRun(runId, minionId, end, ctx.now, lapsed);
      if (!run) return 'refused' as const;
      const row = await ctx.reach.closeAround(run.jobId);
      if (!row) return 'refused' as const;
      // Only what the minion reported counts toward its quarantine: a lapsed
      // lease may be the network's or the database's doing, not the machine's.
      if (run.minionId !== null && !lapsed) {
        const succeeded = end.result === 'success' || end.result === 'warning';
        await ctx.q.recordMinionOutcome({
          minionId: run.minionId,
          exception: end.result === 'exception',
          quarantineAfter,
          warmFor: succeeded ? { repositoryId: ctx.graph.repositoryId, label: row.label } : null,
          now: ctx.now,
        });
      }
      const infrastructure =
        end.result === 'exception' &&
        end.reason !== null &&
        infrastructureReasons.includes(end.reason);
      if (infrastructure && row.retriesUsed < row.retries) {
        await apply(ctx, { type: 'retry', job: row.label }, (label, update) => {
          if (label !== row.label) return;
          update.retriesUsed = row.retriesUsed + 1;
          update.nextCause = 'auto-retry';
          update.avoidMinionId = run.minionId;
        });
      } else {
        await apply(ctx, {
          type: 'finished',
          job: row.label,
          result: end.result,
          reason: end.reason,
        });
      }
      return 'ok' as const;
    });
    return outcome ?? 'refused';
  }

  /** Applies a timeout to one job, unless it has moved on meanwhile. */
  async function timeOut(
    graphId: number,
    jobId: number,
    timeout: 'request' | 'max-runtime' | 'idle',
    stillDue: (q: SchedulerQueries, now: Date) => Promise<boolean>,
  ): Promise<boolean> {
    const applied = await withGraph(graphId, async (ctx) => {
      if (!(await stillDue(ctx.q, ctx.now))) return false;
      const job = await ctx.q.job(jobId);
      if (!job) return false;
      await ctx.reach.close([job.label]);
      const plan = await apply(ctx, { type: 'timeout', job: job.label, timeout });
      return plan.refused === undefined;
    });
    return applied ?? false;
  }

  /** An action by job id: loads what the event reaches, applies it, reports a refusal as data. */
  async function jobAction(
    jobId: number,
    event: (label: string) => GraphEvent,
    prepare: (reach: Reach, label: string) => Promise<void>,
    adjust?: Adjust,
  ): Promise<ActionOutcome> {
    const job = await store.job(jobId);
    if (!job) return { ok: false, reason: `unknown job ${jobId}` };
    const outcome = await withGraph(job.graphId, async (ctx) => {
      await prepare(ctx.reach, job.label);
      const refused = await serverJobs.refuse(ctx, event(job.label));
      if (refused !== undefined) return { ok: false as const, reason: refused };
      const plan = await apply(ctx, event(job.label), adjust);
      return plan.refused === undefined
        ? { ok: true as const, transitions: plan.transitions.length }
        : { ok: false as const, reason: plan.refused };
    });
    return outcome ?? { ok: false, reason: `unknown graph ${job.graphId}` };
  }

  /** Jobs an event brought back from done get the cause of their next run. */
  const reopenedAs =
    (cause: RunCause): Adjust =>
    (_label, update, transitions) => {
      if (transitions[0]!.from.state === 'done' || transitions[0]!.from.state === 'inactive') {
        update.nextCause = cause;
        update.retriesUsed = 0;
        update.avoidMinionId = null;
      }
    };

  const serverJobs = createServerJobs<EventContext>({
    store,
    clock,
    notify,
    logger,
    withGraph,
    apply,
    endRun,
    reopenedAs,
    tagSetKey,
  });

  return {
    /**
     * Stores a graph and its jobs in its initial state, in a handful of
     * multi-row statements. Idempotent: the same event and graph name give
     * back the graph stored the first time.
     */
    async createGraph(input: {
      repositoryId: number;
      eventId: number;
      spec: GraphSpec;
      trust: GraphRow['trust'];
      /** Built for a protected branch: restricted minions may take its jobs. Default false. */
      protectedBranch?: boolean;
    }): Promise<{ graphId: number; jobCount: number }> {
      const { spec } = input;
      const problems = checkGraph(spec);
      if (problems.length > 0) throw new InvalidGraphError(spec.graph, problems);
      const state = initialState(spec);
      const claimable = new Set<number>();
      const serverWork = { due: false };
      const created = await store.transaction(async (q) => {
        const now = clock.now();
        const { jobs: _jobs, ...header } = spec;
        const graphId = await q.insertGraph(
          {
            repositoryId: input.repositoryId,
            eventId: input.eventId,
            name: spec.graph,
            sha: spec.event.sha,
            spec: header,
            trust: input.trust,
            protectedBranch: input.protectedBranch ?? false,
          },
          now,
        );
        if (graphId === undefined) {
          const existing = (await q.graphOfEvent(input.eventId, spec.graph))!;
          return { graphId: existing, jobCount: await q.countJobs(existing) };
        }
        // A range job never runs itself: its chunks, materialised when it is pending, do.
        const keyOf = (job: JobSpec) =>
          job.kind === 'command' && chunkRange(job) === null
            ? tagSetKey(job.requires, input.trust)
            : null;
        const sets = new Map<string, string[]>();
        for (const job of spec.jobs) {
          const key = keyOf(job);
          if (key !== null) sets.set(key, [...new Set(job.requires)].sort());
        }
        const tagSetIds = await q.upsertTagSets(sets);
        for (const [key, id] of tagSetIds) keys.set(id, key);
        const rows: NewJob[] = spec.jobs.map((job) => {
          const status = state.get(job.label)!;
          const pending = status.state === 'pending';
          const key = keyOf(job);
          if (pending && key !== null) claimable.add(tagSetIds.get(key)!);
          return {
            label: job.label,
            kind: job.kind,
            state: status.state,
            result: status.result,
            reason: status.reason,
            tagSetKey: key,
            priority: job.priority,
            retries: job.retries,
            definition: job,
            pendingSince: pending ? now : null,
            requestDeadline:
              pending && job.requestTimeout ? after(now, job.requestTimeout.seconds) : null,
          };
        });
        const ids = await q.insertJobs(graphId, rows, tagSetIds, now);
        await q.insertEdges(
          spec.jobs.flatMap((job) =>
            job.dependencies.map((dep) => ({
              jobId: ids.get(job.label)!,
              dependsOnJobId: ids.get(dep.job)!,
              condition: dep.results,
            })),
          ),
        );
        const graph = (await q.graph(graphId))!;
        await serverJobs.afterCreate(
          { q, graph, reach: new Reach(q, graph), now, claimable, serverWork },
          spec.jobs.filter((job) => state.get(job.label)!.state === 'pending'),
        );
        // A graph of dummies (or of inactive jobs) can be done from the start.
        await finishGraphIfDone(q, graph, now);
        return { graphId, jobCount: rows.length };
      });
      await announce(claimable);
      if (serverWork.due) onServerWork?.();
      onGraphChanged?.(created.graphId);
      return created;
    },

    /**
     * Hands the minion the best pending command job it may take (its tags,
     * trust, restriction; preferences: not a job to retry elsewhere, its
     * warm jobs), with a lease; undefined when there is none. Reads the
     * minion's tags and trust from its row. Throws InactiveMinionError when
     * the minion is quarantined, retired or unknown.
     */
    async claim(input: {
      minionId: number;
      leaseMs: number;
      /** SHA-256 of the run's read token (src/minions/protocol.ts). */
      readTokenHash?: string;
    }): Promise<Claim | undefined> {
      const now = clock.now();
      // Concurrent claims may have locked every candidate: look deeper, until none is left.
      for (let perSet = CANDIDATES_PER_SET; ; perSet *= 8) {
        const attempt = await store.claimNext({
          minionId: input.minionId,
          now,
          leaseSeconds: input.leaseMs / 1000,
          perSet,
          preferAmong: PREFER_AMONG,
          readTokenHash: input.readTokenHash ?? null,
        });
        if (attempt.kind === 'inactive')
          throw new InactiveMinionError(input.minionId, attempt.state);
        if (attempt.kind === 'none') {
          if (attempt.exhausted) return undefined;
          continue;
        }
        const { job } = attempt;
        return {
          runId: job.runId,
          jobId: job.jobId,
          graphId: job.graphId,
          label: job.label,
          attempt: job.attempt,
          cause: job.cause,
          job: job.definition,
          leaseExpiresAt: job.leaseExpiresAt,
          sha: job.sha,
          repositoryId: job.repositoryId,
        };
      }
    },

    /**
     * Renews the lease for `leaseMs` from now (the database's now); when it
     * lapses now. 'stop' when the run is not this minion's, or is no longer
     * running.
     */
    async heartbeat(input: {
      runId: number;
      minionId: number;
      leaseMs: number;
    }): Promise<{ leaseExpiresAt: Date } | 'stop'> {
      const until = await store.extendLease(input.runId, input.minionId, input.leaseMs / 1000);
      return until === undefined ? 'stop' : { leaseExpiresAt: until };
    },

    /** Log output arrived: the idle timeout counts from now. */
    async touchOutput(input: { runId: number; minionId: number }): Promise<'ok' | 'stop'> {
      return (await store.recordOutput(input.runId, input.minionId, clock.now())) ? 'ok' : 'stop';
    },

    /**
     * The minion's report. Refused (nothing changes) unless the run is the
     * minion's and running. An infrastructure failure with retries left puts
     * the job back to pending for an auto-retry, preferably elsewhere.
     */
    async finishRun(input: {
      runId: number;
      minionId: number;
      result: JobResult;
      reason?: JobReason | null;
      exitCode?: number | null;
    }): Promise<'ok' | 'refused'> {
      return endRun(input.runId, input.minionId, {
        result: input.result,
        reason: input.reason ?? null,
        exitCode: input.exitCode ?? null,
      });
    },

    /**
     * Records a maintenance pass (src/minions/maintenance.ts): the database
     * answers. After an outage (`outage`: this replica's passes failed; or no
     * pass of any replica for `gapSeconds`) the database counts as up from
     * now, and lapsed leases wait for the grace `expireLeases` is given.
     */
    watchLeases: (input: { outage: boolean; gapSeconds: number }) => store.watchLeases(input),

    /**
     * Ends every running run whose lease lapsed with exception /
     * claim-expired; a run whose minion heartbeats meanwhile is kept. With
     * `graceSeconds`, only once the database has been up that long since
     * its last outage (`watchLeases`): minions cut off by the outage
     * heartbeat first. Runs of retired minions end at once.
     */
    async expireLeases(options: { graceSeconds?: number } = {}): Promise<number> {
      let count = 0;
      for (const runId of await store.lapsedLeases(options.graceSeconds ?? 0)) {
        const ended = await endRun(
          runId,
          undefined,
          { result: 'exception', reason: 'claim-expired', exitCode: null },
          true,
        );
        if (ended === 'ok') count++;
      }
      return count;
    },

    /** Request timeouts of pending jobs, max runtime and idle timeouts of running runs. */
    async enforceTimeouts(): Promise<number> {
      const now = clock.now();
      let count = 0;
      for (const jobId of await store.overduePendingJobs(now)) {
        const job = await store.job(jobId);
        if (!job) continue;
        const applied = await timeOut(job.graphId, jobId, 'request', async (q, at) => {
          const current = await q.job(jobId);
          return (
            current?.state === 'pending' &&
            current.requestDeadline !== null &&
            current.requestDeadline <= at
          );
        });
        if (applied) count++;
      }
      const runTimeouts = [
        ['runtimeDeadline', 'max-runtime'],
        ['idleDeadline', 'idle'],
      ] as const;
      for (const [column, timeout] of runTimeouts) {
        for (const runId of await store.overdueRuns(column, now)) {
          const run = await store.run(runId);
          if (!run) continue;
          const applied = await timeOut(run.graphId, run.jobId, timeout, async (q, at) => {
            const current = await q.lockRun(runId);
            const deadline = current?.[column];
            return current?.state === 'running' && deadline != null && deadline <= at;
          });
          if (applied) count++;
        }
      }
      return count;
    },

    /** A new run of a done job; its skipped or finished descendants are reopened. */
    retrigger(input: { jobId: number }): Promise<ActionOutcome> {
      return jobAction(
        input.jobId,
        (job) => ({ type: 'retrigger', job }),
        (reach, label) => reach.descendants(label),
        reopenedAs('retrigger'),
      );
    },

    /** Backfill: an inactive job (and the inactive jobs it needs) enters the graph. */
    activate(input: { jobId: number }): Promise<ActionOutcome> {
      return jobAction(
        input.jobId,
        (job) => ({ type: 'activate', job }),
        (reach, label) => reach.close([label]),
        reopenedAs('scheduled'),
      );
    },

    /** One job, or every active job of the graph that is not done; running runs end with it. */
    async cancel(input: {
      graphId: number;
      jobId?: number;
      reason?: 'user-cancel' | 'superseded';
    }): Promise<ActionOutcome> {
      const reason = input.reason ?? 'user-cancel';
      if (input.jobId !== undefined) {
        const job = await store.job(input.jobId);
        if (!job || job.graphId !== input.graphId) {
          return { ok: false, reason: `unknown job ${input.jobId} in graph ${input.graphId}` };
        }
        return jobAction(
          input.jobId,
          (label) => ({ type: 'cancel', job: label, reason }),
          (reach, label) => reach.close([label]),
        );
      }
      const outcome = await withGraph(input.graphId, async (ctx) => {
        await ctx.reach.everything();
        const plan = await apply(ctx, { type: 'cancel', reason });
        return plan.refused === undefined
          ? { ok: true as const, transitions: plan.transitions.length }
          : { ok: false as const, reason: plan.refused };
      });
      return outcome ?? { ok: false, reason: `unknown graph ${input.graphId}` };
    },

    /** Finishes every pending timer that is due (the maintenance passes call it). */
    fireTimers: () => serverJobs.fireTimers(),

    /** Sends pending notify jobs' notifications and finishes them; safe on several replicas. */
    runNotifications: () => serverJobs.runNotifications(),

    /**
     * Approves a pending breakpoint for an approver (login and team slugs)
     * it lists; a refusal is data naming who may approve.
     */
    approve: (input: { jobId: number; approver: Approver }) => serverJobs.approve(input),

    /**
     * The graph, its jobs and their runs, as committed: a read, taking no
     * lock, so that reading a 10,000-job graph never holds up its events.
     */
    async graphStatus(input: { graphId: number }): Promise<GraphStatus | undefined> {
      const graph = await store.graph(input.graphId);
      if (!graph) return undefined;
      const [rows, runs] = await Promise.all([
        store.graphJobViews(graph.id),
        store.graphRuns(graph.id),
      ]);
      const byJob = groupRuns(runs);
      return {
        graph,
        jobs: rows.map((row) => ({ ...row, runs: byJob.get(row.id) ?? [] })),
      };
    },

    /** One job as readers see it, with its runs and its graph. A read, taking no lock. */
    async jobStatus(input: {
      jobId: number;
    }): Promise<{ graph: GraphRow; job: JobView } | undefined> {
      const row = await store.job(input.jobId);
      if (!row) return undefined;
      const graph = (await store.graph(row.graphId))!;
      const runs = await store.runsOfJobs([row.id]);
      return {
        graph,
        job: {
          id: row.id,
          label: row.label,
          kind: row.kind,
          state: row.state,
          result: row.result,
          reason: row.reason,
          priority: row.priority,
          retries: row.retries,
          retriesUsed: row.retriesUsed,
          pendingSince: row.pendingSince,
          parentJobId: row.parentJobId,
          chunk: row.definition.chunk,
          dueAt: row.dueAt,
          source: row.definition.source,
          runs,
        },
      };
    },

    /**
     * One page of the graph for readers: the graph, its jobs counted by
     * state and result, and up to `limit` jobs in label order after
     * `after`, with their runs; `next` is the label to ask after for the
     * next page, null on the last. A read, taking no lock.
     */
    async graphPage(input: {
      graphId: number;
      after?: string | undefined;
      limit: number;
    }): Promise<GraphPage | undefined> {
      const graph = await store.graph(input.graphId);
      if (!graph) return undefined;
      const [rows, counted] = await Promise.all([
        store.graphJobViews(graph.id, {
          ...(input.after === undefined ? {} : { after: input.after }),
          limit: input.limit + 1,
        }),
        store.graphCounts(graph.id),
      ]);
      const more = rows.length > input.limit;
      const page = more ? rows.slice(0, input.limit) : rows;
      const runs = await store.runsOfJobs(page.map((row) => row.id));
      const byJob = groupRuns(runs);
      const counts: GraphPage['counts'] = { jobs: 0, states: {}, results: {} };
      for (const { state, result, count } of counted) {
        counts.jobs += count;
        counts.states[state] = (counts.states[state] ?? 0) + count;
        if (result !== null) counts.results[result] = (counts.results[result] ?? 0) + count;
      }
      return {
        graph,
        counts,
        jobs: page.map((row) => ({ ...row, runs: byJob.get(row.id) ?? [] })),
        next: more ? page[page.length - 1]!.label : null,
      };
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
