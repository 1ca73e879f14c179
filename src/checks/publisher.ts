/**
 * The check-run publisher: keeps each report's GitHub check runs in step
 * with its graph, inside GitHub's budgets.
 *
 * - Durable: what to publish is derived from the database (a report is due
 *   when its graph's `changes` moved past what it last published, or at
 *   its refresh time), never from a message that could be lost. A report is
 *   worked on by one replica at a time, under a lease.
 * - Coalesced: the check runs are rendered from the graph's state as it is
 *   now, and a check run is sent only when its rendering differs from what
 *   it last sent (a hash). Ten transitions between two passes cost one
 *   request; a job that starts and ends between passes goes straight from
 *   queued to completed.
 * - Budgeted: every create and update is a content-creating request, and
 *   each takes a slot of the installation's budget (src/db/github-budget.ts,
 *   shared by every replica) before it is sent; what finds no slot waits for
 *   the next. When GitHub refuses with retry-after or a spent rate limit,
 *   the installation waits until then; a rate limit that names no time
 *   backs off exponentially (the budget's). Other failures retry in 5 s.
 * - Ordered by what people look at: the summary first, then completed jobs,
 *   then running ones, then the rest. A job's check run that stays queued
 *   is not updated (from blocked to pending, say): with its create and its
 *   completion, a short job costs two requests.
 */
import { createHash } from 'node:crypto';
import { errorMessage } from '../lib/errors.js';
import { createLoop } from '../lib/loop.js';
import type { Clock } from '../lib/clock.js';
import type { GraphReport } from '../lib/graph-report.js';
import type { Logger } from '../lib/logger.js';
import { GitHubError, type CheckRunFields, type GitHubPort, type RepoRef } from '../github/port.js';
import {
  ANNOTATIONS_PER_REQUEST,
  DEFAULT_MAX_JOB_CHECK_RUNS,
  renderCheckRuns,
  summaryKey,
  type CheckStatus,
  type DesiredCheckRun,
} from './render.js';

/** A report the publisher holds the lease of. */
export type DueReport = {
  id: number;
  graphId: number | null;
  installationId: number;
  fullName: string;
  headSha: string;
  staticCheckRun: DesiredCheckRun | null;
  publishedChanges: number;
  /** The graph's `changes` when the report was taken (0 for a static report). */
  changes: number;
};

export type CheckRunRow = {
  id: number;
  key: string;
  generation: number;
  githubId: number | null;
  sentHash: string | null;
  status: CheckStatus | null;
  annotationsSent: number;
  sentAt: Date | null;
};

export type CheckReportStore = {
  /** Leases up to `limit` due reports (see the module comment) for `leaseMs`. */
  takeDue(now: Date, leaseMs: number, limit: number): Promise<DueReport[]>;
  /** The newest generation of each of the report's check runs. */
  checkRuns(reportId: number): Promise<CheckRunRow[]>;
  /** A row for a check run about to be created; the existing one if there is. */
  addCheckRun(
    reportId: number,
    key: string,
    generation: number,
    name: string,
  ): Promise<CheckRunRow>;
  recordSent(
    checkRunId: number,
    sent: {
      githubId: number;
      sentHash: string;
      status: CheckStatus;
      annotationsSent: number;
      at: Date;
    },
  ): Promise<void>;
  /** Gives the lease back: what was published, whether all is final, when to look again. */
  release(
    reportId: number,
    outcome: {
      publishedChanges: number;
      finished: boolean;
      dueAt: Date;
      holdUntil: Date | null;
      error: string | null;
    },
  ): Promise<void>;
};

export type Budget = {
  /**
   * Takes up to `wanted` request slots now; `retryAt` says when the next
   * frees when short; `backingOff`, that GitHub refused lately without a time.
   */
  take(
    installationId: number,
    wanted: number,
    now: Date,
  ): Promise<{ granted: number; retryAt: Date | null; backingOff: boolean }>;
  /** GitHub refused with a rate limit: answers when to try again. */
  refused(installationId: number, now: Date, retryAt: Date | undefined): Promise<Date>;
  /** A request went through: the back-off starts again. */
  succeeded(installationId: number): Promise<void>;
};

export type CheckPublisherOptions = {
  store: CheckReportStore;
  budget: Budget;
  github: GitHubPort;
  /** The graph as check runs show it; `details` adds logs, artifacts and annotations. */
  report: (graphId: number, options: { detailsUpTo: number }) => Promise<GraphReport | undefined>;
  clock: Clock;
  logger?: Logger;
  maxJobCheckRuns?: number;
  /** A running graph's check runs are looked at again this often, changes or not (running times, started jobs). */
  refreshMs?: number;
  /** An update that does not complete a check run waits this long after the last one. */
  minUpdateMs?: number;
  intervalMs?: number;
  leaseMs?: number;
};

type Op = {
  desired: DesiredCheckRun;
  hash: string;
  /** The row to send as: an existing check run to update, or to create. */
  row: CheckRunRow | undefined;
  create: boolean;
  generation: number;
};

const rank = (op: Op) =>
  op.desired.key === summaryKey
    ? 0
    : op.desired.status === 'completed'
      ? 1
      : op.desired.status === 'in_progress'
        ? 2
        : 3;

export function hashOf(desired: DesiredCheckRun): string {
  const { annotations: _annotations, ...rest } = desired;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 32);
}

function fields(
  desired: DesiredCheckRun,
  annotations: DesiredCheckRun['annotations'],
): CheckRunFields {
  return {
    name: desired.name,
    external_id: desired.externalId,
    details_url: desired.detailsUrl,
    status: desired.status,
    ...(desired.conclusion === null ? {} : { conclusion: desired.conclusion }),
    ...(desired.startedAt ? { started_at: desired.startedAt.toISOString() } : {}),
    ...(desired.completedAt ? { completed_at: desired.completedAt.toISOString() } : {}),
    output: {
      title: desired.output.title,
      summary: desired.output.summary,
      ...(desired.output.text === null ? {} : { text: desired.output.text }),
      ...(annotations.length > 0 ? { annotations } : {}),
    },
    actions: desired.actions,
  };
}

const FAR = new Date('9999-12-31T00:00:00Z');

export function createCheckPublisher(options: CheckPublisherOptions) {
  const {
    store,
    budget,
    github,
    clock,
    logger,
    maxJobCheckRuns = DEFAULT_MAX_JOB_CHECK_RUNS,
    refreshMs = 10_000,
    minUpdateMs = 5_000,
    intervalMs = 1_000,
    leaseMs = 60_000,
  } = options;

  /** Publishes what changed of one report; the lease is released whatever happens. */
  async function publish(report: DueReport): Promise<void> {
    const now = clock.now();
    const [owner = '', name = ''] = report.fullName.split('/');
    const repo: RepoRef = { installationId: report.installationId, owner, repo: name };
    let desired: DesiredCheckRun[];
    let final: boolean;
    if (report.staticCheckRun) {
      desired = [report.staticCheckRun];
      final = true;
    } else {
      const graph = await options.report(report.graphId!, { detailsUpTo: maxJobCheckRuns });
      if (!graph) {
        await store.release(report.id, {
          publishedChanges: report.changes,
          finished: true,
          dueAt: FAR,
          holdUntil: null,
          error: `graph ${report.graphId} is gone`,
        });
        return;
      }
      desired = renderCheckRuns(graph, { maxJobCheckRuns });
      final = graph.state === 'done';
    }

    const rows = new Map((await store.checkRuns(report.id)).map((row) => [row.key, row]));
    const ops: Op[] = [];
    let deferredUntil: Date | null = null;
    for (const d of desired) {
      const row = rows.get(d.key);
      const hash = hashOf(d);
      if (!row || row.githubId === null) {
        ops.push({ desired: d, hash, row, create: true, generation: row?.generation ?? 1 });
      } else if (row.status === 'completed' && d.status !== 'completed') {
        // Reopened (a retrigger): a new check run, as GitHub's Re-run makes; the old one stays.
        ops.push({
          desired: d,
          hash,
          row: undefined,
          create: true,
          generation: row.generation + 1,
        });
      } else if (row.status === 'queued' && d.status === 'queued' && d.key !== summaryKey) {
        // A job still queued is not worth a request of the budget (blocked or pending, say):
        // its check run changes when it starts or ends. Tower's own page has the rest.
        continue;
      } else if (row.sentHash !== hash || row.annotationsSent < d.annotations.length) {
        const soon = row.sentAt ? row.sentAt.getTime() + minUpdateMs : 0;
        if (d.status !== 'completed' && soon > now.getTime()) {
          if (!deferredUntil || soon < deferredUntil.getTime()) deferredUntil = new Date(soon);
          continue;
        }
        ops.push({ desired: d, hash, row, create: false, generation: row.generation });
      }
    }
    ops.sort((a, b) => rank(a) - rank(b));

    let sent = 0;
    let holdUntil: Date | null = null;
    let error: string | null = null;
    if (ops.length > 0) {
      const { granted, retryAt, backingOff } = await budget.take(
        report.installationId,
        ops.length,
        now,
      );
      if (granted < ops.length) holdUntil = retryAt;
      for (const op of ops.slice(0, granted)) {
        try {
          await send(repo, report, op);
          sent++;
          if (backingOff && sent === 1) await budget.succeeded(report.installationId);
        } catch (failure) {
          const problem = failure instanceof GitHubError ? failure : undefined;
          error = errorMessage(failure);
          logger?.warn(
            { err: failure, reportId: report.id, checkRun: op.desired.name },
            'check run not published; will retry',
          );
          if (problem?.rateLimited) {
            holdUntil = await budget.refused(report.installationId, now, problem.retryAt);
          } else {
            holdUntil = new Date(now.getTime() + 5_000);
          }
          break;
        }
      }
    }
    const complete = sent === ops.length;
    const annotationsLeft = ops.some(
      (op) =>
        op.desired.annotations.length > (op.row?.annotationsSent ?? 0) + ANNOTATIONS_PER_REQUEST,
    );
    const allCompleted = desired.every((d) => d.status === 'completed');
    const finished =
      complete && !annotationsLeft && final && allCompleted && deferredUntil === null;
    const later = (ms: number) => new Date(now.getTime() + ms);
    await store.release(report.id, {
      publishedChanges: complete ? report.changes : report.publishedChanges,
      finished,
      dueAt: finished
        ? FAR
        : !complete || annotationsLeft
          ? now
          : (deferredUntil ?? later(refreshMs)),
      holdUntil: complete && !annotationsLeft ? null : holdUntil,
      error,
    });
  }

  async function send(repo: RepoRef, report: DueReport, op: Op) {
    const from = op.create ? 0 : (op.row?.annotationsSent ?? 0);
    const annotations = op.desired.annotations.slice(from, from + ANNOTATIONS_PER_REQUEST);
    const body = fields(op.desired, annotations);
    // A row left without a GitHub id (its create failed) is created again under the same row.
    const row =
      op.row ??
      (await store.addCheckRun(report.id, op.desired.key, op.generation, op.desired.name));
    let githubId: number;
    if (op.create || row.githubId === null) {
      githubId = await github.createCheckRun(repo, { ...body, head_sha: report.headSha });
    } else {
      githubId = row.githubId;
      await github.updateCheckRun(repo, githubId, body);
    }
    await store.recordSent(row.id, {
      githubId,
      sentHash: op.hash,
      status: op.desired.status,
      annotationsSent: from + annotations.length,
      at: clock.now(),
    });
  }

  /** Publishes every report that is due now; resolves with how many were looked at. */
  async function tick(): Promise<number> {
    let handled = 0;
    for (;;) {
      const due = await store.takeDue(clock.now(), leaseMs, 20);
      if (due.length === 0) return handled;
      for (const report of due) {
        try {
          await publish(report);
        } catch (failure) {
          logger?.error({ err: failure, reportId: report.id }, 'check report failed');
          await store
            .release(report.id, {
              publishedChanges: report.publishedChanges,
              finished: false,
              dueAt: new Date(clock.now().getTime() + 10_000),
              holdUntil: null,
              error: errorMessage(failure),
            })
            .catch(() => undefined);
        }
        handled++;
      }
    }
  }

  const loop = createLoop({ name: 'check publisher', pass: tick, intervalMs, logger });
  return { tick, ...loop };
}

export type CheckPublisher = ReturnType<typeof createCheckPublisher>;
