/**
 * Server-side jobs (docs/definitions.md "Jobs"): the
 * kinds that run on the server, not on a minion, and range chunks. The
 * scheduler calls `afterApply` after every event it writes (and
 * `afterCreate` for a new graph), inside the event's transaction, and
 * `refuse` before an action; the passes (`fireTimers`, `runNotifications`)
 * and `approve` are its public API.
 *
 * - dummy: completes inside the state machine; nothing here.
 * - timer: entering pending sets `jobs.due_at` (the `at` time, or now + the
 *   delay); leaving pending clears it. `fireTimers` finishes due timers with
 *   `success`, under the graph lock, after checking again that the timer is
 *   still pending and due (another replica may have fired it). A request
 *   timeout applies as for any pending job.
 * - breakpoint: `approve` checks the approver against the job's `approvers`
 *   (a login, or `team:<slug>` of a team the approver is in), records a
 *   `job_approvals` row and finishes the job `success`, in one transaction.
 *   A refusal is data naming who may approve. Rejecting is cancelling the
 *   job (`cancel`): recording who rejected needs a column the approvals
 *   table lacks, so it comes with the HTTP route.
 * - notify: graphs of untrusted pull requests never call webhooks (the job
 *   posts its comment, if any, and says so in its log; with nothing else to
 *   send it ends `skipped`). `runNotifications` takes pending notify jobs one by one under the
 *   graph lock (pending → running, with a run that has a lease and no
 *   minion), commits, and only then sends through the NotifyPort, outside any
 *   transaction; the run then ends through the scheduler's endRun, `success`
 *   or `exception`, and its log says what was sent or what failed. Once a job
 *   is running no replica takes it again, so a run sends at most once; a
 *   replica that dies mid-send leaves the lease to lapse (`exception`,
 *   `claim-expired`), it never resends.
 * - trigger (a graph on a peer cluster): not yet; the job stays pending until
 *   the clusters issue runs it (or its request timeout ends it).
 *
 * Range chunks (`chunks: { min, max }`, see src/graph/chunks.ts for the pure
 * half). A range job never runs itself (it has no tag set, so no claim
 * takes it). When it enters pending, it materialises n chunk jobs, n = the
 * idle eligible minions clamped to [min, max], labelled `<label>/<k>`, with
 * `parent_job_id` = the range job and the range job's upstream edges; then
 * it goes to running with no run of its own. When its last chunk is done, it
 * finishes with the worst chunk result (resultSeverity) and that chunk's
 * reason, and its dependents move on as usual. Chunks are outside the state
 * machine's edges (src/scheduler/reach.ts leaves them out), so:
 * - retrigger of the range job, or of an upstream (which reopens it), makes
 *   it materialise again when it is next pending: chunk rows are reused by
 *   label (a new run each, history kept in runs), new labels are added when
 *   more minions are idle, and chunks a smaller count leaves out become
 *   inactive (their runs stay). Labels stay unique in the graph.
 * - retrigger of a chunk: the chunk runs again; a done range job is reopened
 *   (its dependents with it) and goes straight back to running without
 *   materialising, because a chunk of it is open. Refused while the range
 *   job waits to materialise again (blocked, or done with an upstream not
 *   met), since its chunks are then about to be replaced.
 * - cancel of the range job cancels its open chunks; cancelling a chunk
 *   counts as that chunk's result. Chunks are never activated.
 * - a range job that is running when an upstream is retriggered is treated
 *   like a running command job: its chunks go on and their results count.
 *
 * Every follow-up event (a range job starting or finishing, chunks being
 * cancelled) is applied in the same transaction with a fresh Reach, since
 * rows an earlier event loaded are stale once it has written.
 */
import { chunkCount, chunkJobs, chunkRange, worstOutcome } from '../graph/chunks.js';
import type { EventPlan, GraphEvent, JobReason, Transition } from '../graph/state-machine.js';
import type { ChunkWrite } from '../db/server-job-store.js';
import type {
  GraphRow,
  JobRow,
  JobUpdate,
  RunCause,
  SchedulerStore,
  SchedulerQueries,
} from '../db/scheduler-store.js';
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { JobResult, JobSpec } from '../lib/graph-spec.js';
import type { Logger } from '../lib/logger.js';
import type { Notification, NotifyPort } from './notify.js';
import { Reach, statusOf } from './reach.js';

/** What the scheduler's events run with: one transaction, its graph locked. */
export type ServerJobContext = {
  q: SchedulerQueries;
  graph: GraphRow;
  reach: Reach;
  now: Date;
  /** Tag sets of the command jobs this transaction made pending (to wake claims after the commit). */
  claimable: Set<number>;
  /** Set here when a notify job became pending or a timer due: the passes run after the commit. */
  serverWork: { due: boolean };
};

export type Adjust = (label: string, update: JobUpdate, transitions: Transition[]) => void;

/** Who approves: a GitHub login and the slugs of the teams they are in (in the repository's organisation). */
export type Approver = { login: string; teams: readonly string[] };

export type ApprovalOutcome =
  | { ok: true; transitions: number }
  | {
      ok: false;
      refusal: 'unknown-job' | 'not-a-breakpoint' | 'not-an-approver' | 'not-pending';
      reason: string;
      /** Who may approve the job (its `approvers`), to tell the person refused. */
      approvers: string[];
    };

export type ServerJobDeps<C extends ServerJobContext> = {
  store: SchedulerStore;
  clock: Clock;
  notify: NotifyPort;
  logger?: Logger | undefined;
  withGraph<T>(graphId: number, work: (ctx: C) => Promise<T>): Promise<T | undefined>;
  apply(ctx: C, event: GraphEvent, adjust?: Adjust): Promise<EventPlan>;
  endRun(
    runId: number,
    minionId: undefined,
    end: { result: JobResult; reason: JobReason | null; exitCode: number | null },
  ): Promise<'ok' | 'refused'>;
  reopenedAs(cause: RunCause): Adjust;
  tagSetKey(tags: readonly string[], trust: GraphRow['trust']): string;
  /** How long a notification may take before its run's lease lapses. */
  notifyLeaseMs?: number;
};

/** A minion seen within this long counts as idle for sizing range chunks (if it runs nothing). */
export const IDLE_SEEN_SECONDS = 60;
/** Notify jobs sent side by side, at most. */
const NOTIFY_BATCH = 20;
const DEFAULT_NOTIFY_LEASE_MS = 5 * 60_000;

const open: ReadonlySet<JobRow['state']> = new Set(['blocked', 'pending', 'running']);

/** When a timer that became pending at `pendingAt` fires. */
export function timerDue(job: Pick<JobSpec, 'timer'>, pendingAt: Date): Date {
  const at = job.timer?.at ? new Date(job.timer.at) : undefined;
  if (at && !Number.isNaN(at.getTime())) return at;
  return new Date(pendingAt.getTime() + (job.timer?.delaySeconds ?? 0) * 1000);
}

/** Whether the approver is listed by login, or is in a listed `team:<slug>` (both case-insensitive, as on GitHub). */
export function mayApprove(approvers: readonly string[], approver: Approver): boolean {
  const login = approver.login.toLowerCase();
  const teams = new Set(approver.teams.map((team) => team.toLowerCase()));
  return approvers.some((entry) =>
    entry.startsWith('team:')
      ? teams.has(entry.slice('team:'.length).toLowerCase())
      : entry.toLowerCase() === login,
  );
}

function describe(row: Pick<JobRow, 'state' | 'result'>): string {
  return row.state === 'done' ? `done (${row.result})` : row.state;
}

export function createServerJobs<C extends ServerJobContext>(deps: ServerJobDeps<C>) {
  const { store, clock, logger } = deps;
  const notifyLeaseMs = deps.notifyLeaseMs ?? DEFAULT_NOTIFY_LEASE_MS;

  /** Applies a follow-up event in the same transaction, on rows read again. */
  async function follow(
    ctx: C,
    event: GraphEvent,
    prepare: (reach: Reach) => Promise<void>,
    adjust?: Adjust,
  ): Promise<EventPlan> {
    const graph = (await ctx.q.graph(ctx.graph.id))!;
    const next: C = { ...ctx, graph, reach: new Reach(ctx.q, graph) };
    await prepare(next.reach);
    return deps.apply(next, event, adjust);
  }

  /** What the event's transitions mean for server-side jobs and chunks; runs follow-up events. */
  async function afterApply(ctx: C, transitions: readonly Transition[]): Promise<void> {
    const byJob = new Map<string, Transition[]>();
    for (const t of transitions) {
      const list = byJob.get(t.job);
      if (list) list.push(t);
      else byJob.set(t.job, [t]);
    }
    const followUps: (() => Promise<void>)[] = [];
    for (const [label, list] of byJob) {
      // Ids, kinds and definitions do not change; states are read from the transitions.
      const row = ctx.reach.row(label);
      const from = list[0]!.from;
      const to = list[list.length - 1]!.to;
      if (row.kind === 'timer') {
        if (to.state === 'pending') {
          const due = timerDue(row.definition, ctx.now);
          await ctx.q.setDueAt(row.id, due);
          if (due <= ctx.now) ctx.serverWork.due = true;
        } else if (list.some((t) => t.from.state === 'pending')) {
          await ctx.q.setDueAt(row.id, null);
        }
      } else if (row.kind === 'notify') {
        if (to.state === 'pending') ctx.serverWork.due = true;
      } else if (chunkRange(row.definition) !== null) {
        if (to.state === 'pending') followUps.push(() => startRange(ctx, row.id));
        else if (to.state === 'done' && list.some((t) => t.from.state === 'running')) {
          followUps.push(() => cancelChunks(ctx, row.id, to.reason));
        }
      } else if (row.parentJobId !== null) {
        const parentId = row.parentJobId;
        if (to.state === 'done') followUps.push(() => chunkEnded(ctx, parentId));
        else if (to.state === 'pending' && from.state === 'done') {
          followUps.push(() => chunkReopened(ctx, parentId));
        }
      }
    }
    for (const followUp of followUps) await followUp();
  }

  /** A range job is pending: materialise its chunks (unless a retriggered chunk is open) and run. */
  async function startRange(ctx: C, parentId: number): Promise<void> {
    const parent = (await ctx.q.job(parentId))!;
    if (parent.state !== 'pending') return;
    const chunks = await ctx.q.lockChunks(parent.id);
    if (!chunks.some((chunk) => open.has(chunk.state))) await materialise(ctx, parent, chunks);
    await follow(ctx, { type: 'started', job: parent.label }, (reach) =>
      reach.makeFull([parent.label]),
    );
  }

  async function materialise(ctx: C, parent: JobRow, chunks: readonly JobRow[]): Promise<void> {
    const { q, now, graph } = ctx;
    const spec = parent.definition;
    const tags = [...new Set(spec.requires)].sort();
    const idle = await q.idleMinions(
      tags,
      graph.trust,
      new Date(now.getTime() - IDLE_SEEN_SECONDS * 1000),
    );
    // A sizing hint, not a reservation: range jobs materialising at once count the same minions.
    const count = chunkCount(chunkRange(spec)!, idle);
    const specs = chunkJobs(spec, count);
    const key = deps.tagSetKey(tags, graph.trust);
    const tagSetId = (await q.upsertTagSets(new Map([[key, tags]]))).get(key)!;
    const requestDeadline =
      spec.requestTimeout === null
        ? null
        : new Date(now.getTime() + spec.requestTimeout.seconds * 1000);
    // A retriggered range job's chunks run as retriggers; the first ones as scheduled.
    const cause = parent.nextCause;
    const existing = new Map(chunks.map((chunk) => [chunk.label, chunk]));
    const fresh: ChunkWrite[] = [];
    for (const definition of specs) {
      const old = existing.get(definition.label);
      if (old) {
        await q.reopenChunk({
          id: old.id,
          tagSetId,
          cause,
          chunk: { definition, requestDeadline },
          now,
        });
      } else {
        fresh.push({ definition, requestDeadline });
      }
    }
    await q.insertChunks({
      graphId: graph.id,
      parentJobId: parent.id,
      tagSetId,
      cause,
      chunks: fresh,
      now,
    });
    const wanted = new Set(specs.map((s) => s.label));
    await q.retireChunks(
      chunks
        .filter((chunk) => !wanted.has(chunk.label) && chunk.state !== 'inactive')
        .map((chunk) => chunk.id),
      now,
    );
    ctx.claimable.add(tagSetId);
    logger?.info(
      { graphId: graph.id, job: parent.label, chunks: count, idleMinions: idle },
      'range job materialised its chunks',
    );
  }

  /** The range job ended while running (a cancel): its open chunks end with it. */
  async function cancelChunks(ctx: C, parentId: number, reason: JobReason | null): Promise<void> {
    const cancel = reason === 'superseded' ? 'superseded' : 'user-cancel';
    for (const chunk of await ctx.q.lockChunks(parentId)) {
      if (!open.has(chunk.state)) continue;
      await follow(ctx, { type: 'cancel', job: chunk.label, reason: cancel }, (reach) =>
        reach.close([chunk.label]),
      );
    }
  }

  /** A chunk is done: when it was the last open one, the range job finishes with the worst result. */
  async function chunkEnded(ctx: C, parentId: number): Promise<void> {
    const parent = await ctx.q.job(parentId);
    // One cheap look per chunk; the chunks are read once, when the last one is done.
    if (parent?.state !== 'running' || (await ctx.q.hasOpenChunks(parentId))) return;
    const chunks = (await ctx.q.lockChunks(parentId)).filter((c) => c.state !== 'inactive');
    const outcomes = chunks
      .map((chunk) => ({ index: chunkIndex(chunk), status: statusOf(chunk) }))
      .sort((a, b) => a.index - b.index)
      .flatMap(({ status }) => (status.state === 'done' ? [status] : []));
    const worst = worstOutcome(outcomes);
    if (!worst) return;
    await follow(
      ctx,
      { type: 'finished', job: parent.label, result: worst.result, reason: worst.reason },
      (reach) => reach.close([parent.label]),
    );
  }

  /** A chunk was retriggered: a done range job is reopened (with its dependents) and runs again. */
  async function chunkReopened(ctx: C, parentId: number): Promise<void> {
    const parent = await ctx.q.job(parentId);
    if (parent?.state !== 'done') return;
    await follow(
      ctx,
      { type: 'retrigger', job: parent.label },
      (reach) => reach.descendants(parent.label),
      deps.reopenedAs('retrigger'),
    );
  }

  /** Whether every dependency of the job holds now (the state machine would make it pending). */
  async function dependenciesMet(ctx: C, job: JobRow): Promise<boolean> {
    await ctx.reach.makeFull([job.label]);
    return job.definition.dependencies.every((dep) => {
      const upstream = statusOf(ctx.reach.row(dep.job));
      return upstream.state === 'done' && dep.results.includes(upstream.result);
    });
  }

  /** Why an action on a chunk is refused, beyond what the state machine refuses; undefined to go on. */
  async function refuse(ctx: C, event: GraphEvent): Promise<string | undefined> {
    if (event.type !== 'retrigger' && event.type !== 'activate') return undefined;
    const row = ctx.reach.rows.get(event.job);
    if (!row || row.parentJobId === null) return undefined;
    const parent = (await ctx.q.job(row.parentJobId))!;
    if (event.type === 'activate') {
      return `job "${row.label}" is a chunk of "${parent.label}": chunks come from their range job, they are never activated`;
    }
    if (row.state === 'inactive') {
      return `chunk "${row.label}" was left out when "${parent.label}" last materialised fewer chunks; retrigger "${parent.label}" instead`;
    }
    if (row.state !== 'done' || parent.state === 'running') return undefined;
    if (parent.state === 'done' && (await dependenciesMet(ctx, parent))) return undefined;
    return `retrigger of chunk "${row.label}" needs its range job "${parent.label}" running, or done with its dependencies met, but it is ${describe(parent)}${parent.state === 'done' ? ' and waits for an upstream' : ''}: it will materialise new chunks`;
  }

  /** A new graph's jobs that start pending: timers get their due time, range jobs their chunks. */
  async function afterCreate(ctx: C, pending: readonly JobSpec[]): Promise<void> {
    if (pending.some((job) => job.kind === 'notify')) ctx.serverWork.due = true;
    const labels = pending
      .filter((job) => job.kind === 'timer' || chunkRange(job) !== null)
      .map((job) => job.label);
    if (labels.length === 0) return;
    await ctx.reach.makeFull(labels);
    const blocked = { state: 'blocked', result: null, reason: null } as const;
    const pendingStatus = { state: 'pending', result: null, reason: null } as const;
    await afterApply(
      ctx,
      labels.map((job) => ({ job, from: blocked, to: pendingStatus })),
    );
  }

  async function claimNotification(
    jobId: number,
  ): Promise<{ runId: number; notification: Notification; withheld: string | null } | undefined> {
    const job = await store.job(jobId);
    if (!job) return undefined;
    const claimed = await deps.withGraph(job.graphId, async (ctx) => {
      await ctx.reach.makeFull([job.label]);
      const row = ctx.reach.row(job.label);
      // Another replica may have taken it since it was listed.
      if (row.state !== 'pending' || row.kind !== 'notify') return undefined;
      const plan = await deps.apply(ctx, { type: 'started', job: row.label });
      if (plan.refused !== undefined) return undefined;
      const run = await ctx.q.insertServerRun({
        jobId: row.id,
        cause: row.nextCause,
        now: ctx.now,
        leaseMs: notifyLeaseMs,
      });
      const { graph } = ctx;
      const notification: Notification = {
        repositoryId: graph.repositoryId,
        sha: graph.sha,
        event: { id: graph.eventId, type: graph.spec.event.type, branch: graph.spec.event.branch },
        graph: { id: graph.id, name: graph.name },
        job: { id: row.id, label: row.label },
        runId: run.id,
        comment: row.definition.notify?.comment ?? null,
        webhook: row.definition.notify?.webhook ?? null,
      };
      // An untrusted graph's definitions are a stranger's: they call no URL from the server.
      if (graph.trust === 'untrusted' && notification.webhook !== null) {
        return {
          runId: run.id,
          notification: { ...notification, webhook: null },
          withheld: `webhook ${notification.webhook} not called: graphs of untrusted pull requests (forks) do not call webhooks`,
        };
      }
      return { runId: run.id, notification, withheld: null };
    });
    return claimed;
  }

  async function deliver({
    runId,
    notification: n,
    withheld,
  }: {
    runId: number;
    notification: Notification;
    /** Why the webhook was not called, when it was not. */
    withheld: string | null;
  }): Promise<void> {
    const sent = [
      ...(n.comment === null ? [] : ['comment']),
      ...(n.webhook === null ? [] : [`POST ${n.webhook}`]),
    ];
    let result: JobResult;
    let log: string;
    try {
      await deps.notify.send(n);
      // A withheld webhook with nothing else to send is a skip, not a failure of the graph.
      result = withheld !== null && sent.length === 0 ? 'skipped' : 'success';
      log =
        (withheld === null ? '' : `${withheld}\n`) +
        (sent.length > 0 || withheld === null
          ? `notified: ${sent.join(', ') || 'nothing to send'}\n`
          : '');
    } catch (error) {
      result = 'exception';
      log = `notification failed: ${errorMessage(error)}\n`;
      logger?.warn(
        { graphId: n.graph.id, job: n.job.label, runId, err: error },
        'notification failed',
      );
    }
    try {
      await store.appendRunLog(runId, 0, log, clock.now());
      await deps.endRun(runId, undefined, { result, reason: null, exitCode: null });
    } catch (error) {
      // The run stays running until its lease lapses: it then ends `exception`, and is not sent again.
      logger?.error({ runId, err: error }, 'notify run could not be ended');
    }
  }

  return {
    afterApply,
    afterCreate,
    refuse,

    /** Finishes every pending timer that is due, with `success`; how many it finished. */
    async fireTimers(): Promise<number> {
      let fired = 0;
      for (const jobId of await store.dueTimers(clock.now())) {
        const job = await store.job(jobId);
        if (!job) continue;
        const done = await deps.withGraph(job.graphId, async (ctx) => {
          await ctx.reach.close([job.label]);
          const row = ctx.reach.row(job.label);
          // Another replica may have fired it, or it was cancelled, since it was listed.
          if (row.state !== 'pending' || row.dueAt === null || row.dueAt > ctx.now) return false;
          const plan = await deps.apply(ctx, {
            type: 'finished',
            job: row.label,
            result: 'success',
          });
          return plan.refused === undefined;
        });
        if (done) fired++;
      }
      return fired;
    },

    /**
     * Sends what pending notify jobs say and finishes them; how many it
     * took. Several replicas may run it at once: each job is taken once.
     */
    async runNotifications(): Promise<number> {
      let count = 0;
      for (;;) {
        const listed = await store.pendingServerJobs('notify', NOTIFY_BATCH);
        const taken = [];
        for (const jobId of listed) {
          const claimed = await claimNotification(jobId);
          if (claimed) taken.push(claimed);
        }
        // Sent side by side: one slow webhook does not hold up the others.
        await Promise.all(taken.map(deliver));
        count += taken.length;
        // Fewer than a batch: none was left. None taken: other replicas took them.
        if (listed.length < NOTIFY_BATCH || taken.length === 0) return count;
      }
    },

    /**
     * An approval of a pending breakpoint by a listed login or a member of
     * a listed team: recorded, and the job finishes `success`, in one
     * transaction. Who the approver is (their login, their teams in the
     * repository's organisation) is for the caller to establish: the HTTP
     * route and `/tower approve` comments come with GitHub identities,
     * which resolve team membership through the GitHub port.
     */
    async approve(input: { jobId: number; approver: Approver }): Promise<ApprovalOutcome> {
      const { jobId, approver } = input;
      const unknown = (): ApprovalOutcome => ({
        ok: false,
        refusal: 'unknown-job',
        reason: `unknown job ${jobId}`,
        approvers: [],
      });
      const job = await store.job(jobId);
      if (!job) return unknown();
      if (job.kind !== 'breakpoint') {
        return {
          ok: false,
          refusal: 'not-a-breakpoint',
          reason: `job "${job.label}" is a ${job.kind} job: only breakpoints are approved`,
          approvers: [],
        };
      }
      const approvers = [...(job.definition.breakpoint?.approvers ?? [])];
      if (!mayApprove(approvers, approver)) {
        return {
          ok: false,
          refusal: 'not-an-approver',
          reason: `${approver.login} may not approve "${job.label}": its approvers are ${approvers.join(', ')}`,
          approvers,
        };
      }
      const outcome = await deps.withGraph(job.graphId, async (ctx): Promise<ApprovalOutcome> => {
        await ctx.reach.close([job.label]);
        const row = ctx.reach.row(job.label);
        if (row.state !== 'pending') {
          return {
            ok: false,
            refusal: 'not-pending',
            reason: `only a pending breakpoint can be approved, and "${row.label}" is ${describe(row)}`,
            approvers,
          };
        }
        await ctx.q.insertApproval(row.id, approver.login, ctx.now);
        const plan = await deps.apply(ctx, {
          type: 'finished',
          job: row.label,
          result: 'success',
        });
        return { ok: true, transitions: plan.transitions.length };
      });
      return outcome ?? unknown();
    },
  };
}

function chunkIndex(row: JobRow): number {
  const chunk = row.definition.chunk;
  return chunk !== null && 'index' in chunk ? chunk.index : 0;
}

export type ServerJobs = ReturnType<typeof createServerJobs>;
