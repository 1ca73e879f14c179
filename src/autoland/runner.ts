/**
 * The landing queue's runner: the pure queue (src/autoland/queue.ts) made
 * real. Each queue (repository and base branch) is one row; every change
 * applies its events under the row's lock, together with what it tells
 * people (entries, the pull request's one comment), and then carries out
 * the effects on GitHub:
 *
 * - build: a staging branch `tower/staging/<base>/<batch>` at the commit
 *   below, and each pull request merged into it through GitHub's merge API
 *   (squash: the merge's tree as one commit on the branch instead). A pull
 *   request that does not merge is dropped, naming what it conflicts with;
 *   one that was pushed to, closed, or lost its approval meanwhile leaves
 *   the queue, saying why.
 * - test: a `land` event on the staging commit: the graphs its own `.tower/`
 *   selects for `land`, with their check runs.
 * - land: the base branch fast-forwarded to exactly the staging commit; the
 *   ref update fails rather than land anything else (then the base moved,
 *   and everything is built again on its new tip).
 *
 * Nothing is lost to a crash: `tick()` looks at every active queue and does
 * again what its state says is under way (a build, a test to look at, a
 * landing), each step idempotent. It also keeps every queued pull
 * request's `tower/land` check run in step, within the content budget.
 */
import { createHash } from 'node:crypto';
import type { ContentBudget } from '../github/comment-outbox.js';
import type { EventStore, ReportStore } from '../github/ingest.js';
import { landGraphsAt, landingRulesOf, type LandingConfig } from '../github/landing-definitions.js';
import {
  GitHubError,
  hasPermission,
  type CheckRunFields,
  type GitHubPort,
  type RepoRef,
} from '../github/port.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { createLoop } from '../lib/loop.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import {
  DEFAULT_QUEUE_CONFIG,
  batchSize,
  initialQueue,
  positionOf,
  restoreQueue,
  step,
  type Effect,
  type QueueConfig,
  type QueueEvent,
  type QueueState,
} from './queue.js';

export type QueueKey = { repositoryId: number; baseBranch: string };

type EntryState = 'queued' | 'testing' | 'landed' | 'failed' | 'dequeued';

export type LandingEntry = {
  id: number;
  baseBranch: string;
  pullNumber: number;
  headSha: string;
  priority: number;
  state: EntryState;
  reason: string | null;
  landedSha: string | null;
  enqueuedBy: string;
  checkRunId: number | null;
  checkSha: string | null;
  checkHash: string | null;
};

type QueueRow = {
  repositoryId: number;
  baseBranch: string;
  installationId: number;
  fullName: string;
  state: unknown;
  runner: unknown;
};

/** What the runner writes in a queue's transaction (src/db/landing.ts implements it). */
export type LandingQueries = {
  lockQueue(key: QueueKey): Promise<QueueRow | undefined>;
  saveQueue(row: QueueRow & { active: boolean }): Promise<void>;
  upsertEntry(
    key: QueueKey,
    entry: {
      pullNumber: number;
      headSha?: string;
      priority?: number;
      state: EntryState;
      reason?: string | null;
      landedSha?: string | null;
      enqueuedBy?: string;
    },
  ): Promise<void>;
  landingComment(input: {
    installationId: number;
    fullName: string;
    repositoryId: number;
    pullNumber: number;
    body: string;
  }): Promise<void>;
};

export type LandingStorePort = LandingQueries & {
  transaction<T>(work: (q: LandingQueries) => Promise<T>): Promise<T>;
  queue(key: QueueKey): Promise<QueueRow | undefined>;
  queuesOf(repositoryId: number): Promise<(QueueRow & { active: boolean })[]>;
  repositoryNamed(fullName: string): Promise<{ id: number; fullName: string } | undefined>;
  activeQueues(): Promise<QueueKey[]>;
  queuesWithDirtyChecks(): Promise<QueueKey[]>;
  liveEntries(key: QueueKey): Promise<LandingEntry[]>;
  recentEntries(key: QueueKey, limit: number): Promise<LandingEntry[]>;
  entry(repositoryId: number, pullNumber: number): Promise<LandingEntry | undefined>;
  recordCheck(
    id: number,
    check: { checkRunId: number; checkSha: string; checkHash: string },
  ): Promise<void>;
};

export type LandingDeps = {
  store: LandingStorePort;
  github: GitHubPort;
  scheduler: Pick<Scheduler, 'createGraph' | 'cancel' | 'graphStatus'>;
  events: Pick<EventStore, 'recordEvent'>;
  reports: Pick<ReportStore, 'addGraphReport'>;
  budget: ContentBudget;
  clock: Clock;
  logger?: Logger;
  publicUrl: string;
  onReports?: () => void;
  onComments?: () => void;
  intervalMs?: number;
};

/** Beside the queue's state: how it lands, and each batch's staging branch and graphs. */
type RunnerState = {
  method: LandingConfig['method'];
  approvals: number;
  queue: QueueConfig;
  batches: Record<
    string,
    {
      graphIds: number[];
      eventId: number | null;
      /** Each pull request's own commit on the staging branch (its squash, or its last). */
      commits?: Record<string, string>;
    }
  >;
  /**
   * Who is building, testing or landing a batch (`build:3` → until when, ms):
   * one replica or handler at a time, and a crashed one's work is taken over
   * when its lease lapses.
   */
  leases: Record<string, number>;
  /** Failures that did not happen again when their batch was tested in halves (the latest 20). */
  flaky: { at: string; prs: number[]; failures: string[] }[];
};

const failedResults = new Set(['failure', 'exception', 'timed-out']);
const infraReasons = new Set(['claim-expired', 'minion-shutdown']);

export const stagingBranch = (base: string, batch: number) => `tower/staging/${base}/${batch}`;

const refOf = (row: { installationId: number; fullName: string }): RepoRef => {
  const [owner = '', repo = ''] = row.fullName.split('/');
  return { installationId: row.installationId, owner, repo };
};

const list = (prs: readonly number[]) => prs.map((n) => `#${n}`).join(', ');

function runnerOf(value: unknown, config?: LandingConfig): RunnerState {
  const existing = value as Partial<RunnerState> | undefined;
  const queue: QueueConfig = config
    ? {
        ...DEFAULT_QUEUE_CONFIG,
        minBatch: config.batch.min,
        maxBatch: config.batch.max,
        maxParallel: config.parallel,
      }
    : (existing?.queue ?? DEFAULT_QUEUE_CONFIG);
  return {
    method: config?.method ?? existing?.method ?? 'merge',
    approvals: config?.approvals ?? existing?.approvals ?? 1,
    queue,
    batches: existing?.batches ?? {},
    leases: existing?.leases ?? {},
    flaky: existing?.flaky ?? [],
  };
}

/** How long a build, a test's start or a landing may take before another takes it over. */
const LEASE_MS = 120_000;
/** How soon a step that failed is tried again. */
const RETRY_MS = 5_000;

type Work = Extract<Effect, { kind: 'build' | 'test' | 'land' }>;
const isWork = (effect: Effect): effect is Work =>
  effect.kind === 'build' || effect.kind === 'test' || effect.kind === 'land';
const leaseKey = (work: { kind: string; batch: number }) => `${work.kind}:${work.batch}`;

/** The batch state each kind of work is done in. */
const stateOf = { build: 'building', test: 'testing', land: 'landing' } as const;

/** Leases of work that is no longer under way go. */
function pruneLeases(runner: RunnerState, state: QueueState) {
  const wanted = new Set(
    (['build', 'test', 'land'] as const).flatMap((kind) =>
      state.batches
        .filter((b) => b.state === stateOf[kind])
        .map((b) => leaseKey({ kind, batch: b.id })),
    ),
  );
  for (const key of Object.keys(runner.leases)) if (!wanted.has(key)) delete runner.leases[key];
}

const isActive = (state: QueueState) =>
  state.queue.length > 0 || state.line.length > 0 || state.batches.length > 0;

export type LandOutcome = { ok: true; message: string } | { ok: false; message: string };

export function createLandingRunner(deps: LandingDeps) {
  const { store, github, clock, logger } = deps;
  let effectsApplied = 0;

  /**
   * Applies events to a queue under its lock, recording what they tell
   * people in the same transaction; carries out the effects afterwards.
   */
  async function apply(
    key: QueueKey,
    events: QueueEvent[],
    options: {
      create?: { installationId: number; fullName: string; baseSha: string; config: LandingConfig };
      mutate?: (runner: RunnerState, state: QueueState) => void;
    } = {},
  ): Promise<Effect[]> {
    const done = await store.transaction(async (q) => {
      let row = await q.lockQueue(key);
      let runner: RunnerState;
      let state: QueueState;
      if (!row) {
        if (!options.create) return undefined;
        runner = runnerOf(undefined, options.create.config);
        state = initialQueue(options.create.baseSha);
        row = {
          ...key,
          installationId: options.create.installationId,
          fullName: options.create.fullName,
          state,
          runner,
        };
      } else {
        runner = runnerOf(row.runner, options.create?.config);
        state = restoreQueue(row.state);
      }
      options.mutate?.(runner, state);
      const effects: Effect[] = [];
      for (const event of events) {
        const next = step(state, event, runner.queue);
        state = next.state;
        effects.push(...next.effects);
      }
      for (const effect of effects) await tell(q, row, runner, state, effect);
      // Whoever applied the events carries out their work: it holds the leases.
      for (const effect of effects) {
        if (isWork(effect)) runner.leases[leaseKey(effect)] = clock.now().getTime() + LEASE_MS;
      }
      pruneLeases(runner, state);
      // A batch that landed or left the chain is done with: its graphs go with it.
      const retired: RunnerState['batches'] = {};
      for (const effect of effects) {
        if (effect.kind !== 'cancel' && effect.kind !== 'landed') continue;
        const id = String(effect.batch);
        if (runner.batches[id]) retired[id] = runner.batches[id];
        delete runner.batches[id];
      }
      await q.saveQueue({ ...row, state, runner, active: isActive(state) });
      return { effects, row, runner, retired };
    });
    if (!done) return [];
    effectsApplied += done.effects.length;
    if (done.effects.some((e) => e.kind !== 'build' && e.kind !== 'test')) deps.onComments?.();
    for (const effect of done.effects) {
      await act(key, done.row, done.runner, effect, done.retired);
    }
    return done.effects;
  }

  /** What an effect tells people: the entry, and the pull request's landing comment. */
  async function tell(
    q: LandingQueries,
    row: QueueRow,
    runner: RunnerState,
    state: QueueState,
    effect: Effect,
  ) {
    const key = { repositoryId: row.repositoryId, baseBranch: row.baseBranch };
    const comment = (pullNumber: number, body: string) =>
      q.landingComment({ ...row, pullNumber, body });
    switch (effect.kind) {
      case 'landed': {
        const commits = runner.batches[String(effect.batch)]?.commits ?? {};
        for (const pr of effect.prs) {
          const own = runner.method === 'merge' ? effect.sha : (commits[String(pr)] ?? effect.sha);
          await q.upsertEntry(key, { pullNumber: pr, state: 'landed', landedSha: own });
          const others = effect.prs.filter((p) => p !== pr);
          const tested =
            own === effect.sha
              ? 'the commit whose land graph passed'
              : `below ${effect.sha}, the commit whose land graph passed`;
          await comment(
            pr,
            runner.method === 'merge'
              ? `🛬 Landed on \`${row.baseBranch}\` in ${own}, ${tested}${others.length > 0 ? ` (with ${list(others)})` : ''}.`
              : `🛬 Landed on \`${row.baseBranch}\` as ${own} (${runner.method === 'squash' ? 'squashed' : 'rebased'}), ${tested}${others.length > 0 ? ` (with ${list(others)})` : ''}. Closing this pull request: its commits are on \`${row.baseBranch}\` under new names.`,
          );
        }
        return;
      }
      case 'sent-back': {
        const failing =
          effect.failures.length > 0
            ? `\n\nFailing jobs:\n${effect.failures.map((f) => `- ${f}`).join('\n')}`
            : '';
        await q.upsertEntry(key, { pullNumber: effect.pr, state: 'failed', reason: effect.reason });
        await comment(
          effect.pr,
          `❌ Sent back from the landing queue of \`${row.baseBranch}\`: ${effect.reason}.${failing}\n\nFix it, push, and comment \`/tower land\` again.`,
        );
        return;
      }
      case 'dequeued':
        await q.upsertEntry(key, {
          pullNumber: effect.pr,
          state: 'dequeued',
          reason: effect.reason,
        });
        await comment(
          effect.pr,
          `↩️ Taken out of the landing queue of \`${row.baseBranch}\`: ${effect.reason}. Comment \`/tower land\` to queue it again.`,
        );
        return;
      case 'flaky':
        runner.flaky = [
          ...runner.flaky,
          { at: clock.now().toISOString(), prs: effect.prs, failures: effect.failures },
        ].slice(-20);
        logger?.warn(
          { repositoryId: row.repositoryId, prs: effect.prs, failures: effect.failures },
          'landing: a land graph failed, and passed again without any change: flaky',
        );
        for (const pr of effect.prs) {
          if (!positionOf(state, pr)) continue;
          await comment(
            pr,
            `⏳ Queued to land on \`${row.baseBranch}\`. A land graph with it failed, then passed again unchanged: recorded as flaky (${effect.failures.join(', ') || 'no job named'}).`,
          );
        }
        return;
      case 'paused':
        logger?.warn(
          { repositoryId: row.repositoryId, reason: effect.reason },
          'landing queue paused',
        );
        return;
      case 'build':
      case 'test':
      case 'land':
      case 'cancel':
        // Work, not news: act() carries it out.
        return;
    }
  }

  /** Carries out an effect on GitHub; what happened goes back into the queue. */
  async function act(
    key: QueueKey,
    row: QueueRow,
    runner: RunnerState,
    effect: Effect,
    retired: RunnerState['batches'] = {},
  ) {
    const repo = refOf(row);
    try {
      if (effect.kind === 'build') await build(key, row, runner, effect);
      else if (effect.kind === 'test') await test(key, row, effect);
      else if (effect.kind === 'land') await land(key, row, effect);
      else if (effect.kind === 'cancel') {
        for (const graphId of retired[String(effect.batch)]?.graphIds ?? []) {
          await deps.scheduler.cancel({ graphId, reason: 'superseded' });
        }
        await github.deleteBranch(repo, stagingBranch(row.baseBranch, effect.batch));
      } else if (effect.kind === 'landed' && runner.method !== 'merge') {
        // A squashed pull request is not GitHub's merge: it is closed, its comment names the commit.
        for (const pr of effect.prs) await github.closePullRequest(repo, pr);
      }
    } catch (error) {
      // A later tick does it again (every step is idempotent), after a pause.
      logger?.warn(
        { err: error, effect: effect.kind, repositoryId: key.repositoryId },
        'landing step failed; will retry',
      );
      if (isWork(effect)) {
        const retryAt = clock.now().getTime() + RETRY_MS;
        await apply(key, [], {
          mutate: (current) => {
            if (current.leases[leaseKey(effect)] !== undefined)
              current.leases[leaseKey(effect)] = retryAt;
          },
        }).catch(() => undefined);
      }
    }
  }

  async function build(
    key: QueueKey,
    row: QueueRow,
    runner: RunnerState,
    effect: Extract<Effect, { kind: 'build' }>,
  ) {
    const repo = refOf(row);
    const state = restoreQueue((await store.queue(key))?.state ?? row.state);
    const batch = state.batches.find((b) => b.id === effect.batch);
    if (!batch || batch.state !== 'building') return;
    const prs = batch.prs;
    // Still what was queued? A push, a close or a lost approval takes it out.
    for (const pr of prs) {
      const why = await notLandable(repo, pr.number, pr.headSha, runner.approvals);
      if (why) {
        await apply(key, [{ type: 'dequeue', pr: pr.number, reason: why }]);
        return;
      }
    }
    const branch = stagingBranch(row.baseBranch, effect.batch);
    await github.setBranch(repo, branch, effect.onto);
    let tip = effect.onto;
    const merged: number[] = [];
    const commits: Record<string, string> = {};
    for (const pr of prs) {
      const result = await stage(repo, branch, tip, pr, runner.method, row.baseBranch);
      if (result.kind === 'conflict') {
        const files = await overlap(repo, pr, tip);
        await apply(key, [
          {
            type: 'conflict',
            batch: effect.batch,
            prs: [pr.number],
            detail: `it no longer merges into ${row.baseBranch} at ${tip.slice(0, 12)}${merged.length > 0 ? ` (with ${list(merged)} merged first)` : ''}${files.length > 0 ? `; both sides changed ${files.map((f) => `\`${f}\``).join(', ')}` : ''}`,
          },
        ]);
        return;
      }
      tip = result.sha;
      commits[String(pr.number)] = tip;
      merged.push(pr.number);
    }
    await apply(key, [{ type: 'built', batch: effect.batch, stagingSha: tip }], {
      mutate: (r) => {
        r.batches[String(effect.batch)] = {
          ...(r.batches[String(effect.batch)] ?? { graphIds: [], eventId: null }),
          commits,
        };
      },
    });
  }

  /**
   * One pull request onto the staging branch at `tip`, as the method lands it:
   * merge, GitHub's merge commit; squash, the merge's tree as one commit;
   * rebase, each of its commits again on top, one by one (each one's tree is
   * the merge of the branch with that commit).
   */
  async function stage(
    repo: RepoRef,
    branch: string,
    tip: string,
    pr: { number: number; headSha: string },
    method: LandingConfig['method'],
    base: string,
  ): Promise<{ kind: 'staged'; sha: string } | { kind: 'conflict' }> {
    if (method === 'merge') {
      const result = await github.mergeInto(
        repo,
        branch,
        pr.headSha,
        `Land #${pr.number} on ${base}`,
      );
      if (result.kind === 'conflict') return result;
      return { kind: 'staged', sha: result.kind === 'merged' ? result.sha : tip };
    }
    if (method === 'squash') {
      const result = await github.mergeInto(repo, branch, pr.headSha, `Squash #${pr.number}`);
      if (result.kind === 'conflict') return result;
      if (result.kind === 'up-to-date') return { kind: 'staged', sha: tip };
      const info = await github.pullRequest(repo, pr.number);
      const { tree } = await github.commit(repo, result.sha);
      const sha = await github.createCommit(repo, {
        tree,
        parents: [tip],
        message: `${info?.title ?? `Pull request #${pr.number}`} (#${pr.number})`,
      });
      await github.setBranch(repo, branch, sha);
      return { kind: 'staged', sha };
    }
    let at = tip;
    for (const commit of await github.pullRequestCommits(repo, pr.number)) {
      const result = await github.mergeInto(repo, branch, commit.sha, `Rebase ${commit.sha}`);
      if (result.kind === 'conflict') return result;
      if (result.kind === 'up-to-date') continue;
      const { tree } = await github.commit(repo, result.sha);
      at = await github.createCommit(repo, {
        tree,
        parents: [at],
        message: commit.message,
        author: commit.author,
      });
      await github.setBranch(repo, branch, at);
    }
    return { kind: 'staged', sha: at };
  }

  /** The files a conflicting pull request and the staging commit both changed. */
  async function overlap(
    repo: RepoRef,
    pr: { number: number; headSha: string },
    tip: string,
  ): Promise<string[]> {
    try {
      const mine = await github.pullRequestFiles(repo, pr.number);
      const theirs = await github.compareFiles(repo, pr.headSha, tip);
      if (!mine || !theirs) return [];
      const changed = new Set(theirs);
      return mine.filter((f) => changed.has(f)).slice(0, 10);
    } catch {
      return [];
    }
  }

  /** Why the pull request may not land as queued; undefined when it may. */
  async function notLandable(
    repo: RepoRef,
    number: number,
    headSha: string,
    approvals: number,
  ): Promise<string | undefined> {
    const pr = await github.pullRequest(repo, number);
    if (!pr || pr.state !== 'open') return 'it was closed';
    if (pr.headSha !== headSha) return `new commits were pushed (${pr.headSha.slice(0, 12)})`;
    if (pr.draft) return 'it is a draft';
    return approvalProblem(
      await github.reviews(repo, number),
      approvals,
      headSha,
      writers(github, repo),
    );
  }

  async function test(key: QueueKey, row: QueueRow, effect: Extract<Effect, { kind: 'test' }>) {
    const repo = refOf(row);
    const event = await deps.events.recordEvent({
      repositoryId: row.repositoryId,
      type: 'land',
      dedupKey: `land:${row.repositoryId}:${row.baseBranch}:${effect.batch}:${effect.stagingSha}`,
      sha: effect.stagingSha,
      ref: `refs/heads/${stagingBranch(row.baseBranch, effect.batch)}`,
      author: null,
      pullNumber: null,
      payload: { batch: effect.batch, prs: effect.prs, base: row.baseBranch },
    });
    const { specs, errors } = await landGraphsAt(github, repo, effect.stagingSha, row.baseBranch);
    if (errors.length > 0) {
      await apply(key, [
        {
          type: 'tested',
          batch: effect.batch,
          result: 'failure',
          failures: errors.slice(0, 5).map((e) => `.tower/ error: ${e}`),
        },
      ]);
      return;
    }
    if (specs.length === 0) {
      await apply(key, [
        {
          type: 'pause',
          reason: `the staging commit's .tower/ has no graph for the land event: add a scheduler { on: land, graph: … }`,
        },
      ]);
      return;
    }
    const graphIds: number[] = [];
    for (const spec of specs) {
      const { graphId } = await deps.scheduler.createGraph({
        repositoryId: row.repositoryId,
        eventId: event.id,
        spec,
        trust: 'trusted',
        // The staging commit holds the pull requests' own .tower/: restricted minions never take it.
        protectedBranch: false,
      });
      await deps.reports.addGraphReport({
        eventId: event.id,
        graphId,
        repositoryId: row.repositoryId,
        installationId: row.installationId,
        headSha: effect.stagingSha,
      });
      graphIds.push(graphId);
    }
    deps.onReports?.();
    let current = false;
    await apply(key, [], {
      mutate: (runner, state) => {
        current = state.batches.some((b) => b.id === effect.batch && b.state === 'testing');
        if (!current) return;
        runner.batches[String(effect.batch)] = {
          ...runner.batches[String(effect.batch)],
          graphIds,
          eventId: event.id,
        };
      },
    });
    // The batch left the chain while its graphs were being made: they test nothing now.
    if (!current) {
      for (const graphId of graphIds)
        await deps.scheduler.cancel({ graphId, reason: 'superseded' });
    }
  }

  async function land(key: QueueKey, row: QueueRow, effect: Extract<Effect, { kind: 'land' }>) {
    const repo = refOf(row);
    const moved = await github.fastForward(repo, row.baseBranch, effect.stagingSha);
    if (moved === 'ok') {
      await apply(key, [{ type: 'landed', batch: effect.batch }]);
      await github.deleteBranch(repo, stagingBranch(row.baseBranch, effect.batch));
      return;
    }
    const tip = await github.branchSha(repo, row.baseBranch);
    if (!tip) return;
    const saved = (await store.queue(key))?.state;
    const base = saved === undefined ? undefined : restoreQueue(saved).baseSha;
    if (tip !== base) {
      await apply(key, [{ type: 'base-moved', sha: tip }]);
      return;
    }
    // The base is where the batch was built, and GitHub still said no.
    await apply(key, [
      {
        type: 'land-refused',
        batch: effect.batch,
        reason: `the base is still at ${tip.slice(0, 12)}; a branch protection rule may forbid the update. Resume the queue once it allows Tower to push`,
      },
    ]);
  }

  /** The results of batches whose land graphs finished. */
  async function lookAtTests(key: QueueKey): Promise<void> {
    const row = await store.queue(key);
    if (!row) return;
    const state = restoreQueue(row.state);
    const runner = runnerOf(row.runner);
    const testing = state.batches.filter((b) => b.state === 'testing').map((b) => b.id);
    const events: QueueEvent[] = [];
    for (const id of testing) {
      const graphIds = runner.batches[String(id)]?.graphIds;
      if (!graphIds || graphIds.length === 0) continue;
      const statuses = await Promise.all(
        graphIds.map((graphId) => deps.scheduler.graphStatus({ graphId })),
      );
      if (statuses.some((s) => !s || s.graph.state !== 'done')) continue;
      const failed = statuses.flatMap((s) =>
        s!.jobs
          .filter((j) => j.state === 'done' && failedResults.has(j.result ?? ''))
          .map((j) => ({ graph: s!.graph, job: j })),
      );
      const cancelled = statuses.some((s) => s!.graph.result === 'cancelled');
      if (failed.length === 0 && !cancelled) {
        events.push({ type: 'tested', batch: id, result: 'success' });
      } else if (
        failed.length > 0 &&
        failed.every(({ job }) => job.result === 'exception' && infraReasons.has(job.reason ?? ''))
      ) {
        events.push({ type: 'tested', batch: id, result: 'infra' });
      } else {
        events.push({
          type: 'tested',
          batch: id,
          result: 'failure',
          failures: failed.map(
            ({ job }) =>
              `[${job.label}](${deps.publicUrl}/jobs/${job.id}): ${job.result}${job.reason ? ` (${job.reason})` : ''}`,
          ),
        });
      }
    }
    if (events.length > 0) await apply(key, events);
  }

  /**
   * Does again what a queue's state says is under way (builds, tests, a
   * landing) when nobody holds its lease: after a crash, or a step that failed.
   */
  async function reconcile(key: QueueKey): Promise<void> {
    const row = await store.queue(key);
    if (!row) return;
    const state = restoreQueue(row.state);
    if (state.mode === 'paused') return;
    const runner = runnerOf(row.runner);
    const due: Work[] = [];
    for (const unit of state.batches) {
      const numbers = unit.prs.map((p) => p.number);
      if (unit.state === 'building' && unit.onto !== null) {
        due.push({ kind: 'build', batch: unit.id, onto: unit.onto, prs: numbers });
      } else if (
        unit.state === 'testing' &&
        unit.stagingSha &&
        !runner.batches[String(unit.id)]?.graphIds.length
      ) {
        due.push({ kind: 'test', batch: unit.id, stagingSha: unit.stagingSha, prs: numbers });
      } else if (unit.state === 'landing' && unit.stagingSha) {
        due.push({ kind: 'land', batch: unit.id, stagingSha: unit.stagingSha, prs: numbers });
      }
    }
    for (const work of due) {
      const now = clock.now().getTime();
      if ((runner.leases[leaseKey(work)] ?? 0) > now) continue;
      // Claimed under the queue's lock, if the work is still under way and nobody holds it.
      let claimed: RunnerState | undefined;
      await apply(key, [], {
        mutate: (current, state) => {
          if ((current.leases[leaseKey(work)] ?? 0) > now) return;
          if (!state.batches.some((b) => b.id === work.batch && b.state === stateOf[work.kind]))
            return;
          current.leases[leaseKey(work)] = now + LEASE_MS;
          claimed = current;
        },
      });
      if (claimed) await act(key, row, claimed, work);
    }
  }

  /** Each queued pull request's `tower/land` check run, in step with where it is. */
  async function syncChecks(key: QueueKey): Promise<number> {
    const row = await store.queue(key);
    if (!row) return 0;
    const state = restoreQueue(row.state);
    let sent = 0;
    for (const entry of await store.liveEntries(key)) {
      const fields = landCheck(row, state, entry);
      const hash = createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 32);
      if (entry.checkHash === hash && entry.checkSha === entry.headSha) continue;
      const { granted, backingOff } = await deps.budget.take(row.installationId, 1, clock.now());
      if (granted === 0) return sent;
      const repo = refOf(row);
      try {
        let id = entry.checkSha === entry.headSha ? entry.checkRunId : null;
        if (id === null)
          id = await github.createCheckRun(repo, { ...fields, head_sha: entry.headSha });
        else await github.updateCheckRun(repo, id, fields);
        await store.recordCheck(entry.id, {
          checkRunId: id,
          checkSha: entry.headSha,
          checkHash: hash,
        });
        if (backingOff) await deps.budget.succeeded(row.installationId);
        sent++;
      } catch (error) {
        logger?.warn(
          { err: error, pr: entry.pullNumber },
          'tower/land check run not published; will retry',
        );
        // A rate limit: the check publisher and the comments wait too, as long as GitHub
        // said, or backing off when it named no time.
        if (error instanceof GitHubError && error.rateLimited) {
          await deps.budget.refused(row.installationId, clock.now(), error.retryAt);
        }
        return sent;
      }
    }
    return sent;
  }

  function landCheck(row: QueueRow, state: QueueState, entry: LandingEntry): CheckRunFields {
    const where = positionOf(state, entry.pullNumber);
    const base = {
      name: 'tower/land',
      external_id: `tower:land:${row.repositoryId}:${entry.pullNumber}`,
      details_url: `${deps.publicUrl}/api/v1/repos/${row.fullName}/queue`,
      actions: [],
    };
    if (entry.state === 'landed') {
      return {
        ...base,
        status: 'completed',
        conclusion: 'success',
        output: {
          title: `Landed in ${entry.landedSha?.slice(0, 12) ?? ''}`,
          summary: `Landed on \`${row.baseBranch}\` in ${entry.landedSha ?? ''}.`,
        },
      };
    }
    if (entry.state === 'failed' || entry.state === 'dequeued') {
      return {
        ...base,
        status: 'completed',
        conclusion: entry.state === 'failed' ? 'failure' : 'neutral',
        output: {
          title: entry.state === 'failed' ? 'Sent back' : 'Not queued',
          summary: entry.reason ?? '',
        },
      };
    }
    if (!where)
      return {
        ...base,
        status: 'queued',
        output: { title: 'Queued', summary: 'Waiting for the queue.' },
      };
    if (where.kind === 'waiting') {
      const title =
        state.mode === 'running'
          ? `Queued: ${where.place + 1} in line`
          : `Queued; the queue is ${state.mode}${state.pausedBecause ? ` (${state.pausedBecause})` : ''}`;
      return {
        ...base,
        status: 'queued',
        output: { title, summary: `${title}, to land on \`${row.baseBranch}\`.` },
      };
    }
    const others = where.batch.prs
      .filter((p) => p.number !== entry.pullNumber)
      .map((p) => p.number);
    const title = `In batch ${where.batch.id}${others.length > 0 ? ` with ${list(others)}` : ''}: ${where.batch.state}`;
    return {
      ...base,
      status: 'in_progress',
      output: {
        title,
        summary: [
          `${title}.`,
          where.index === 0
            ? `Built on the tip of \`${row.baseBranch}\`.`
            : `Built on top of ${where.index} batch${where.index === 1 ? '' : 'es'} expected to land before it.`,
          where.batch.skips.length > 0
            ? `Tested without ${list(where.batch.skips)}, in case ${where.batch.skips.length === 1 ? 'it is' : 'they are'} sent back.`
            : '',
          where.batch.retest
            ? `Batch ${where.batch.retest.of} (${list(where.batch.retest.prs)}) failed: its pull requests are tested again in smaller batches to find which one fails.`
            : '',
        ]
          .filter(Boolean)
          .join(' '),
      },
    };
  }

  /** One pass over the queues; how many effects and check runs it made (0: nothing to do). */
  async function tick(): Promise<number> {
    const before = effectsApplied;
    let sent = 0;
    for (const key of await store.activeQueues()) {
      try {
        await lookAtTests(key);
        await reconcile(key);
      } catch (error) {
        logger?.error({ err: error, ...key }, 'landing queue pass failed');
      }
    }
    // Entries of queues that went quiet still get their final check run.
    const seen = new Set<string>();
    for (const key of [...(await store.activeQueues()), ...(await store.queuesWithDirtyChecks())]) {
      const id = `${key.repositoryId}:${key.baseBranch}`;
      if (seen.has(id)) continue;
      seen.add(id);
      sent += await syncChecks(key);
    }
    return effectsApplied - before + sent;
  }

  return {
    tick,
    ...createLoop({
      name: 'landing queue',
      pass: tick,
      intervalMs: deps.intervalMs ?? 1000,
      logger,
    }),

    /**
     * Queues a pull request if the base branch's rules allow it (its
     * `landing:` section: approvals, no changes requested, not a draft).
     */
    async land(input: {
      repositoryId: number;
      installationId: number;
      fullName: string;
      number: number;
      by: string;
      priority: number;
      single: boolean;
      /** The base branch's rules when the caller has just read them (the label's handler). */
      rules?: Awaited<ReturnType<typeof landingRulesOf>>;
      /** The head commit the person who asked saw: anything else is not what they meant to land. */
      headSha?: string;
    }): Promise<LandOutcome> {
      const repo = refOf(input);
      const pr = await github.pullRequest(repo, input.number);
      if (!pr || pr.state !== 'open') return { ok: false, message: 'the pull request is not open' };
      if (input.headSha !== undefined && pr.headSha !== input.headSha) {
        return {
          ok: false,
          message: `the pull request changed since it was asked (its head is now ${pr.headSha.slice(0, 12)}, not ${input.headSha.slice(0, 12)}): ask again`,
        };
      }
      if (pr.draft) return { ok: false, message: 'the pull request is a draft' };
      const { config, tip, problem } =
        input.rules ?? (await landingRulesOf(github, repo, pr.baseRef));
      if (!config || !tip) return { ok: false, message: problem! };
      const approval = await approvalProblem(
        await github.reviews(repo, input.number),
        config.approvals,
        pr.headSha,
        writers(github, repo),
      );
      if (approval) return { ok: false, message: approval };
      const key = { repositoryId: input.repositoryId, baseBranch: pr.baseRef };
      await store.upsertEntry(key, {
        pullNumber: input.number,
        headSha: pr.headSha,
        priority: input.priority,
        state: 'queued',
        reason: null,
        enqueuedBy: input.by,
      });
      await apply(
        key,
        [
          {
            type: 'enqueue',
            pr: {
              number: input.number,
              headSha: pr.headSha,
              priority: input.priority,
              enqueuedAt: clock.now().getTime(),
              single: input.single,
            },
          },
        ],
        {
          create: {
            installationId: input.installationId,
            fullName: input.fullName,
            baseSha: tip,
            config,
          },
        },
      );
      const state = restoreQueue((await store.queue(key))!.state);
      const at = positionOf(state, input.number);
      const where =
        at?.kind === 'waiting'
          ? `${at.place + 1} in line`
          : at?.kind === 'batch'
            ? `in batch ${at.batch.id}${at.index === 0 ? ', first to land' : ''}`
            : 'queued';
      return {
        ok: true,
        message: `queued to land on \`${pr.baseRef}\` (${config.method}${input.priority !== 0 ? `, priority ${input.priority}` : ''}${input.single ? ', alone' : ''}): ${where}.`,
      };
    },

    async unland(input: {
      repositoryId: number;
      number: number;
      reason: string;
    }): Promise<boolean> {
      const entry = await store.entry(input.repositoryId, input.number);
      if (!entry || (entry.state !== 'queued' && entry.state !== 'testing')) return false;
      const key = { repositoryId: input.repositoryId, baseBranch: entry.baseBranch };
      const effects = await apply(key, [
        { type: 'dequeue', pr: input.number, reason: input.reason },
      ]);
      return effects.some((e) => e.kind === 'dequeued');
    },

    /**
     * A push, a close or a draft: a queued pull request leaves the queue,
     * saying why. Merged by the queue's own landing (GitHub marks it merged
     * when the base reaches its head) is no change: the landing finishes it.
     */
    async pullRequestChanged(input: {
      repositoryId: number;
      number: number;
      headSha: string;
      change: 'pushed' | 'closed' | 'merged' | 'draft';
    }) {
      const entry = await store.entry(input.repositoryId, input.number);
      if (!entry || (entry.state !== 'queued' && entry.state !== 'testing')) return;
      if (input.change === 'pushed' && entry.headSha === input.headSha) return;
      const key = { repositoryId: input.repositoryId, baseBranch: entry.baseBranch };
      if (input.change === 'merged') {
        const saved = (await store.queue(key))?.state;
        const state = saved === undefined ? undefined : restoreQueue(saved);
        const at = state && positionOf(state, input.number);
        if (at?.kind === 'batch' && at.batch.state === 'landing') return;
      }
      const reason = {
        pushed: `new commits were pushed (${input.headSha.slice(0, 12)}): they are untested`,
        closed: 'it was closed',
        merged: 'it was merged outside the queue',
        draft: 'it was made a draft',
      }[input.change];
      await apply(key, [{ type: 'dequeue', pr: input.number, reason }]);
    },

    /**
     * A review was submitted or dismissed: if the pull request is queued and
     * its reviews no longer allow landing, it leaves the queue saying why.
     */
    async reviewed(input: RepoRef & { repositoryId: number; number: number }) {
      const entry = await store.entry(input.repositoryId, input.number);
      if (!entry || (entry.state !== 'queued' && entry.state !== 'testing')) return;
      const key = { repositoryId: input.repositoryId, baseBranch: entry.baseBranch };
      const row = await store.queue(key);
      if (!row) return;
      const { approvals } = runnerOf(row.runner);
      const problem = await approvalProblem(
        await github.reviews(input, input.number),
        approvals,
        entry.headSha,
        writers(github, input),
      );
      if (problem) await apply(key, [{ type: 'dequeue', pr: input.number, reason: problem }]);
    },

    /** A push to a base branch: if the queue did not make it, staging is built again on the new tip. */
    async baseMoved(key: QueueKey, sha: string) {
      const row = await store.queue(key);
      if (!row) return;
      await apply(key, [{ type: 'base-moved', sha }]);
    },

    async setMode(key: QueueKey, mode: 'pause' | 'resume' | 'drain', by: string): Promise<boolean> {
      const row = await store.queue(key);
      if (!row) return false;
      await apply(key, [
        mode === 'pause'
          ? { type: 'pause', reason: `paused by @${by}` }
          : mode === 'resume'
            ? { type: 'resume' }
            : { type: 'drain' },
      ]);
      return true;
    },

    /** The queues of a repository, by its full name, as the queue API shows them. */
    async view(fullName: string) {
      const repository = await store.repositoryNamed(fullName);
      if (!repository) return undefined;
      const repositoryId = repository.id;
      const queues = await store.queuesOf(repositoryId);
      const views = await Promise.all(
        queues.map(async (row) => {
          const state = restoreQueue(row.state);
          // Every pull request still queued, and the latest 200 outcomes.
          const key = { repositoryId, baseBranch: row.baseBranch };
          const byId = new Map<number, LandingEntry>();
          for (const e of [
            ...(await store.liveEntries(key)),
            ...(await store.recentEntries(key, 200)),
          ])
            byId.set(e.id, e);
          const entries = [...byId.values()].sort((a, b) => a.pullNumber - b.pullNumber);
          return {
            base: row.baseBranch,
            mode: state.mode,
            pausedBecause: state.pausedBecause,
            baseSha: state.baseSha,
            failureRate: Number(state.failureRate.toFixed(3)),
            batchSize: batchSize(state.failureRate, runnerOf(row.runner).queue),
            parallel: runnerOf(row.runner).queue.maxParallel,
            batches: state.batches.map((b) => ({
              id: b.id,
              state: b.state,
              prs: b.prs.map((p) => p.number),
              onto: b.onto,
              stagingSha: b.stagingSha,
              branch: stagingBranch(row.baseBranch, b.id),
              parent: b.parent,
              skips: b.skips,
              ...(b.retest ? { retestOf: b.retest.of } : {}),
              ...(b.inferred ? { inferred: true } : {}),
            })),
            flaky: runnerOf(row.runner).flaky,
            waiting: [
              ...state.line.filter((p) => positionOf(state, p.number)?.kind === 'waiting'),
              ...state.queue,
            ]
              .map((p) => ({
                number: p.number,
                priority: p.priority,
                single: p.single,
                place: (positionOf(state, p.number) as { place: number }).place,
              }))
              .sort((a, b) => a.place - b.place),
            pullRequests: entries.map((e) => ({
              number: e.pullNumber,
              state: e.state,
              reason: e.reason,
              landedSha: e.landedSha,
              headSha: e.headSha,
              priority: e.priority,
              enqueuedBy: e.enqueuedBy,
            })),
          };
        }),
      );
      return { repository: repository.fullName, queues: views };
    },
  };
}

/** Reviewers whose permission one decision may look up, at most. */
export const MAX_REVIEWERS = 50;

/**
 * Whether a person may write to the repository, asked of GitHub once per
 * person for one decision (a handling of a command, a review, a build).
 */
export function writers(github: GitHubPort, repo: RepoRef): (login: string) => Promise<boolean> {
  const known = new Map<string, Promise<boolean>>();
  return (login) => {
    const key = login.toLowerCase();
    let answer = known.get(key);
    if (!answer) {
      answer = github.permission(repo, login).then((held) => hasPermission(held, 'write'));
      known.set(key, answer);
    }
    return answer;
  };
}

/**
 * Why the reviews do not allow landing `headSha`; undefined when they do.
 * Each reviewer's latest verdict counts (a comment is no verdict), and only
 * from people with write permission: an approval counts for the commit it
 * was written on, and changes requested block until dismissed or replaced
 * by the same person's later review, whatever commit they were written on.
 */
export async function approvalProblem(
  reviews: readonly { user: string; state: string; commitId: string | null }[],
  needed: number,
  headSha: string,
  mayWrite: (login: string) => Promise<boolean>,
): Promise<string | undefined> {
  const latest = new Map<string, { state: string; commitId: string | null }>();
  for (const review of reviews) {
    if (
      review.state === 'APPROVED' ||
      review.state === 'CHANGES_REQUESTED' ||
      review.state === 'DISMISSED'
    ) {
      latest.set(review.user.toLowerCase(), review);
    }
  }
  const requesting = [...latest].filter(([, r]) => r.state === 'CHANGES_REQUESTED');
  const approving = [...latest].filter(([, r]) => r.state === 'APPROVED' && r.commitId === headSha);
  if (requesting.length > MAX_REVIEWERS) {
    return `more than ${MAX_REVIEWERS} people request changes; dismiss the reviews that do not matter`;
  }
  const blocking: string[] = [];
  for (const [user] of requesting) if (await mayWrite(user)) blocking.push(`@${user}`);
  if (blocking.length > 0) return `changes are requested by ${blocking.join(', ')}`;
  let approvals = 0;
  for (const [user] of approving.slice(0, MAX_REVIEWERS)) {
    if (approvals >= needed) break;
    if (await mayWrite(user)) approvals++;
  }
  if (approvals < needed) {
    const others = [...latest.values()].filter((r) => r.state === 'APPROVED').length - approvals;
    return `it needs ${needed} approving review${needed === 1 ? '' : 's'} of its head commit ${headSha.slice(0, 12)} by people with write permission and has ${approvals}${others > 0 ? ` (${others} other approval${others === 1 ? ' is' : 's are'} for an older commit or by someone without write permission)` : ''}`;
  }
  return undefined;
}

export type LandingRunner = ReturnType<typeof createLandingRunner>;
