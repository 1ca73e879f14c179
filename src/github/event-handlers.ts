/**
 * GitHub's events into Tower: pushes and pull
 * requests become graphs (src/github/ingest.ts); comments carry commands
 * (src/github/commands.ts); the Re-run and action buttons of check runs
 * retrigger. Every handler is idempotent: webhooks are redelivered.
 *
 * Fork safety: a pull request whose head lives in another repository runs
 * nothing until someone with write permission comments `/tower ok-to-test`
 * for its head commit, unless its author, the fork's owner and whoever
 * pushed its head may all write; its graphs are then untrusted, and only
 * minions that accept untrusted work take their jobs. A new push to it
 * needs a new `/tower ok-to-test`.
 *
 * Commands that approve something (`land`, `ok-to-test`, `approve`) bind
 * to the head commit their comment was written for: the head that arrived
 * before it (each head's arrival is recorded from GitHub's own time), or
 * the commit the comment names. Permission is checked before any pattern
 * of a comment is matched.
 */
import type { Probot } from 'probot';
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { breakpointApproversOf, breakpointKey, landingRulesOf } from './landing-definitions.js';
import type { LandingRunner } from '../autoland/runner.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { mayApprove } from '../scheduler/server-jobs.js';
import { commandHelp, matchJobs, parseCommands, type Command } from './commands.js';
import { ingest, skipsCi, type EventStore, type IngestDeps, type ReportStore } from './ingest.js';
import {
  CheckRunPayload,
  CheckSuitePayload,
  IssueCommentPayload,
  PullRequestPayload,
  PullRequestReviewPayload,
  PushPayload,
  parsePayload,
} from './payloads.js';
import { hasPermission, type GitHubPort, type PullRequestInfo, type RepoRef } from './port.js';

export type GitHubHandlerDeps = {
  github: GitHubPort;
  events: EventStore;
  /** Each head commit of a pull request: when it arrived, who pushed it (src/db/pull-request-heads.ts). */
  heads: {
    recordHead(head: {
      repositoryId: number;
      pullNumber: number;
      headSha: string;
      arrivedAt: Date;
      pushedBy: string | null;
    }): Promise<void>;
    head(
      repositoryId: number,
      pullNumber: number,
      headSha: string,
    ): Promise<{ arrivedAt: Date; pushedBy: string | null } | undefined>;
  };
  reports: ReportStore;
  comments: {
    enqueue(comment: {
      dedupKey: string;
      installationId: number;
      fullName: string;
      issueNumber: number;
      body: string;
    }): Promise<void>;
    /** True the first time for a comment id. */
    claimComment(commentId: number): Promise<boolean>;
  };
  checkRuns: {
    byGithubId(githubId: number): Promise<{ graphId: number | null; key: string } | undefined>;
  };
  scheduler: Pick<
    Scheduler,
    'createGraph' | 'cancel' | 'retrigger' | 'activate' | 'approve' | 'graphStatus'
  >;
  /** The landing queue; absent, landing commands are answered that there is none. */
  landing?: Pick<
    LandingRunner,
    'land' | 'unland' | 'pullRequestChanged' | 'reviewed' | 'baseMoved' | 'setMode'
  >;
  /** New or reopened reports: the check publisher looks now. */
  onReports: () => void;
  /** Queued comments: the comment sender looks now. */
  onComments: () => void;
  publicUrl: string;
  logger: Logger;
  clock: Clock;
};

const ZERO_SHA = '0'.repeat(40);
const failedResults = new Set(['failure', 'exception', 'timed-out']);

type Repository = { id: number; full_name: string; name: string; owner: { login: string } };

const refOf = (repository: Repository, installationId: number): RepoRef => ({
  installationId,
  owner: repository.owner.login,
  repo: repository.name,
});

function ingestDeps(deps: GitHubHandlerDeps): IngestDeps {
  return {
    github: deps.github,
    events: deps.events,
    reports: deps.reports,
    scheduler: deps.scheduler,
    onReports: deps.onReports,
    publicUrl: deps.publicUrl,
    logger: deps.logger,
  };
}

export async function onPush(deps: GitHubHandlerDeps, payload: PushPayload): Promise<void> {
  if (payload.deleted || payload.after === ZERO_SHA) return;
  if (!payload.ref.startsWith('refs/heads/')) return;
  const branch = payload.ref.slice('refs/heads/'.length);
  // Tower's own staging refs are built by the landing queue, which runs their graphs itself.
  if (branch.startsWith('tower/')) return;
  // A base branch with a landing queue moved: outside the queue, staging is built again
  // (whatever the commit says about CI: what lands must be tested on the new tip).
  await deps.landing?.baseMoved(
    { repositoryId: payload.repository.id, baseBranch: branch },
    payload.after,
  );
  if (payload.head_commit && skipsCi(payload.head_commit.message)) {
    deps.logger.info({ repository: payload.repository.full_name, sha: payload.after }, 'skip ci');
    return;
  }
  const repo = refOf(payload.repository, payload.installation.id);
  await ingest(ingestDeps(deps), {
    repo,
    repositoryId: payload.repository.id,
    type: 'push',
    dedupKey: `push:${payload.repository.id}:${payload.ref}:${payload.after}`,
    branch,
    sha: payload.after,
    ref: payload.ref,
    author: payload.sender.login,
    pullNumber: null,
    trust: 'trusted',
    // GitHub's word, not the branch's name: restricted minions take only protected pushes.
    protectedBranch: () => deps.github.branchProtected(repo, branch),
    changedFiles: () =>
      payload.before === ZERO_SHA
        ? Promise.resolve(null)
        : deps.github.compareFiles(repo, payload.before, payload.after),
    payload: { ref: payload.ref, before: payload.before, after: payload.after },
  });
}

/**
 * Why the pull request must wait for `/tower ok-to-test`, or undefined when
 * it need not: a fork's runs at once only when everyone who could have put
 * its head there may write to the base repository: its author, the fork's
 * owner, and the one who pushed the head (when Tower heard of the push).
 */
async function needsOkToTest(
  deps: GitHubHandlerDeps,
  repo: RepoRef,
  fullName: string,
  pr: Pick<PullRequestInfo, 'headRepoId' | 'baseRepoId' | 'author' | 'headRepoOwner'>,
  pusher: string | null,
): Promise<string | undefined> {
  const fork = pr.headRepoId === null || pr.headRepoId !== pr.baseRepoId;
  if (!fork) return undefined;
  if (pr.headRepoOwner === null) return 'its fork was deleted';
  const people: [string, string][] = [
    [pr.author, 'its author'],
    [pr.headRepoOwner, 'the owner of the fork it comes from'],
    ...(pusher === null ? [] : ([[pusher, 'who pushed its head commit']] as [string, string][])),
  ];
  const asked = new Set<string>();
  for (const [login, role] of people) {
    if (asked.has(login.toLowerCase())) continue;
    asked.add(login.toLowerCase());
    if (!hasPermission(await deps.github.permission(repo, login), 'write')) {
      return `@${login}, ${role}, cannot write to ${fullName}`;
    }
  }
  return undefined;
}

/** Builds the pull request's graphs for its head commit, and supersedes the older ones. */
async function runPullRequest(
  deps: GitHubHandlerDeps,
  input: {
    repo: RepoRef;
    repositoryId: number;
    fullName: string;
    pr: PullRequestInfo;
    trust: 'trusted' | 'untrusted';
    dedupKey: string;
  },
) {
  const { repo, pr } = input;
  const outcome = await ingest(ingestDeps(deps), {
    repo,
    repositoryId: input.repositoryId,
    type: 'pull_request',
    dedupKey: input.dedupKey,
    branch: pr.baseRef,
    sha: pr.headSha,
    ref: `refs/pull/${pr.number}/head`,
    author: pr.author,
    pullNumber: pr.number,
    trust: input.trust,
    protectedBranch: () => Promise.resolve(false),
    changedFiles: () => deps.github.pullRequestFiles(repo, pr.number),
    payload: { number: pr.number, head: pr.headSha, base: pr.baseRef, trust: input.trust },
  });
  await supersede(deps, input.repositoryId, pr.number, outcome.eventId);
  return outcome;
}

/** Cancels the graphs of the pull request's older events: a newer head supersedes them. */
async function supersede(
  deps: GitHubHandlerDeps,
  repositoryId: number,
  pullNumber: number,
  currentEventId: number | null,
  reason: 'superseded' | 'user-cancel' = 'superseded',
) {
  const older = await deps.events.runningGraphsOfPull(repositoryId, pullNumber, currentEventId);
  for (const graphId of older) await deps.scheduler.cancel({ graphId, reason });
  if (older.length > 0) deps.onReports();
}

export async function onPullRequest(
  deps: GitHubHandlerDeps,
  payload: PullRequestPayload,
  deliveryId: string,
): Promise<void> {
  const p = payload.pull_request;
  const repo = refOf(payload.repository, payload.installation.id);
  const repositoryId = payload.repository.id;
  const change =
    payload.action === 'closed'
      ? p.merged
        ? 'merged'
        : 'closed'
      : payload.action === 'synchronize'
        ? 'pushed'
        : payload.action === 'converted_to_draft'
          ? 'draft'
          : undefined;
  if (change) {
    await deps.landing?.pullRequestChanged({
      repositoryId,
      number: p.number,
      headSha: p.head.sha,
      change,
    });
  }
  if (payload.action === 'closed') {
    await supersede(deps, repositoryId, p.number, null, 'user-cancel');
    return;
  }
  if (payload.action === 'labeled') {
    await onLabeled(deps, payload);
    return;
  }
  const pr: PullRequestInfo = {
    number: p.number,
    state: p.state === 'open' ? 'open' : 'closed',
    title: p.title,
    merged: false,
    draft: p.draft ?? false,
    author: p.user.login,
    headSha: p.head.sha,
    headRef: p.head.ref,
    headRepoId: p.head.repo?.id ?? null,
    headRepoOwner: p.head.repo?.owner.login ?? null,
    baseRepoId: p.base.repo.id,
    baseRef: p.base.ref,
    baseSha: p.base.sha,
  };
  if (
    payload.action === 'opened' ||
    payload.action === 'reopened' ||
    payload.action === 'synchronize'
  ) {
    // GitHub's time of the change that brought the head, and who pushed it.
    await deps.heads.recordHead({
      repositoryId,
      pullNumber: p.number,
      headSha: p.head.sha,
      arrivedAt: new Date(p.updated_at),
      pushedBy: payload.action === 'synchronize' ? payload.sender.login : null,
    });
  }
  const pusher = (await deps.heads.head(repositoryId, p.number, p.head.sha))?.pushedBy ?? null;
  // A reopened pull request runs again, even at a head commit that ran before.
  const dedupKey = `pull_request:${repositoryId}:${p.number}:${p.head.sha}${payload.action === 'reopened' ? `:reopened:${deliveryId}` : ''}`;
  const why = await needsOkToTest(deps, repo, payload.repository.full_name, pr, pusher);
  const untrusted = why !== undefined;
  if (untrusted) {
    if (!(await deps.events.isOkToTest(repositoryId, p.number, p.head.sha))) {
      await supersede(deps, repositoryId, p.number, null);
      if (
        payload.action === 'opened' ||
        payload.action === 'reopened' ||
        payload.action === 'synchronize'
      ) {
        await deps.comments.enqueue({
          dedupKey: `ok-to-test:${repositoryId}:${p.number}:${p.head.sha}`,
          installationId: repo.installationId,
          fullName: payload.repository.full_name,
          issueNumber: p.number,
          body: [
            `Tower has not run this pull request: it comes from a fork, and ${why}.`,
            '',
            `Someone with write permission can read the changes and comment \`/tower ok-to-test\` to run commit \`${p.head.sha.slice(0, 12)}\` on minions that take untrusted work. Each new push needs a new \`/tower ok-to-test\`.`,
          ].join('\n'),
        });
        deps.onComments();
      }
      return;
    }
  }
  if (skipsCi(await deps.github.commitMessage(repo, p.head.sha))) {
    deps.logger.info({ repository: payload.repository.full_name, pr: p.number }, 'skip ci');
    await supersede(deps, repositoryId, p.number, null);
    return;
  }
  await runPullRequest(deps, {
    repo,
    repositoryId,
    fullName: payload.repository.full_name,
    pr,
    trust: untrusted ? 'untrusted' : 'trusted',
    dedupKey,
  });
}

type Outcome = { line: string; ok: boolean };

/**
 * A label on a pull request: the base branch's landing label queues it,
 * as `/tower land` does, when the one who added it may write.
 */
async function onLabeled(deps: GitHubHandlerDeps, payload: PullRequestPayload): Promise<void> {
  const label = payload.label?.name;
  if (!label || !deps.landing) return;
  const repo = refOf(payload.repository, payload.installation.id);
  // The label is the base branch's, at its tip: never the pull request's own .tower/.
  const rules = await landingRulesOf(deps.github, repo, payload.pull_request.base.ref);
  if (!rules.config || rules.config.label !== label) return;
  const permission = await deps.github.permission(repo, payload.sender.login);
  const number = payload.pull_request.number;
  let line: string;
  if (!hasPermission(permission, 'write')) {
    line = `❌ The \`${label}\` label does not queue this pull request: @${payload.sender.login} has ${permission} permission, and landing needs write.`;
  } else {
    const outcome = await deps.landing.land({
      repositoryId: payload.repository.id,
      installationId: repo.installationId,
      fullName: payload.repository.full_name,
      number,
      by: payload.sender.login,
      priority: 0,
      single: false,
      rules,
      // The head the label was added on, nothing pushed since.
      headSha: payload.pull_request.head.sha,
    });
    line = `${outcome.ok ? '✅' : '❌'} The \`${label}\` label${outcome.ok ? '' : ' does not queue this pull request'}: ${outcome.message}`;
  }
  await deps.comments.enqueue({
    dedupKey: `label:${payload.repository.id}:${number}:${payload.pull_request.head.sha}:${label}:${payload.sender.login}`,
    installationId: repo.installationId,
    fullName: payload.repository.full_name,
    issueNumber: number,
    body: `@${payload.sender.login}\n\n${line}`,
  });
  deps.onComments();
}

export async function onIssueComment(
  deps: GitHubHandlerDeps,
  payload: IssueCommentPayload,
): Promise<void> {
  if (payload.action !== 'created') return;
  // Bots (Tower itself among them) do not command Tower.
  if (payload.sender.type === 'Bot' || payload.comment.user.type === 'Bot') return;
  const { commands, problems } = parseCommands(payload.comment.body);
  if (commands.length === 0 && problems.length === 0) return;
  if (!payload.issue.pull_request) return;
  // A redelivered comment runs nothing again.
  if (!(await deps.comments.claimComment(payload.comment.id))) return;
  const repo = refOf(payload.repository, payload.installation.id);
  const login = payload.comment.user.login;
  const number = payload.issue.number;
  const outcomes: Outcome[] = problems.map((p) => ({
    line: `\`${p.line}\`: ${p.message}`,
    ok: false,
  }));
  let help = problems.length > 0;
  const permission = await deps.github.permission(repo, login);
  const context: CommandContext = {
    deps,
    repo,
    repositoryId: payload.repository.id,
    fullName: payload.repository.full_name,
    number,
    login,
    writtenAt: new Date(payload.comment.created_at),
  };
  for (const command of commands) {
    if (command.name === 'help') {
      help = true;
      continue;
    }
    if (command.name === 'queue' && !hasPermission(permission, 'admin')) {
      outcomes.push({
        line: `\`/tower queue ${command.action}\`: refused: @${login} has ${permission} permission on ${payload.repository.full_name}, and it needs admin.`,
        ok: false,
      });
      continue;
    }
    // Approvers of breakpoints need not write: approve() checks them before it matches anything.
    if (command.name !== 'approve' && !hasPermission(permission, 'write')) {
      outcomes.push({
        line: `\`/tower ${command.name}\`: refused: @${login} has ${permission} permission on ${payload.repository.full_name}, and it needs write.`,
        ok: false,
      });
      continue;
    }
    try {
      outcomes.push(await carryOut(context, command));
    } catch (error) {
      deps.logger.error({ err: error, command: command.name }, 'command failed');
      outcomes.push({
        line: `\`/tower ${command.name}\`: failed: ${errorMessage(error)}`,
        ok: false,
      });
    }
  }
  const body = [
    `@${login}`,
    '',
    ...outcomes.map((o) => `- ${o.ok ? '✅' : '❌'} ${o.line}`),
    ...(help ? ['', commandHelp()] : []),
  ].join('\n');
  await deps.comments.enqueue({
    dedupKey: `reply:${payload.comment.id}`,
    installationId: repo.installationId,
    fullName: payload.repository.full_name,
    issueNumber: number,
    body,
  });
  deps.onComments();
}

type CommandContext = {
  deps: GitHubHandlerDeps;
  repo: RepoRef;
  repositoryId: number;
  fullName: string;
  number: number;
  login: string;
  /** When the comment was written (GitHub's time). */
  writtenAt: Date;
};

/** The pull request's current graphs (those of its newest event) with their jobs. */
async function currentGraphs(ctx: CommandContext) {
  const latest = await ctx.deps.events.latestOfPull(ctx.repositoryId, ctx.number);
  if (!latest) return [];
  const graphs = [];
  for (const graphId of latest.graphIds) {
    const status = await ctx.deps.scheduler.graphStatus({ graphId });
    if (status) graphs.push(status);
  }
  return graphs;
}

/**
 * Why the comment is not for the pull request's current head, or undefined
 * when it is: it names that commit, or it was written after the head
 * arrived (GitHub's times, to the second). A head Tower never heard arrive
 * (the pull request predates the installation, or its webhook is late) is
 * recorded as arriving now, so that the next comment is for it.
 */
async function staleComment(
  ctx: CommandContext,
  pr: PullRequestInfo,
  named: string | undefined,
): Promise<string | undefined> {
  const head = pr.headSha.slice(0, 12);
  if (named !== undefined) {
    return pr.headSha.startsWith(named.toLowerCase())
      ? undefined
      : `the comment names ${named}, and the pull request's head is ${head}: comment again for the head you mean`;
  }
  const known = await ctx.deps.heads.head(ctx.repositoryId, ctx.number, pr.headSha);
  if (!known) {
    await ctx.deps.heads.recordHead({
      repositoryId: ctx.repositoryId,
      pullNumber: ctx.number,
      headSha: pr.headSha,
      arrivedAt: ctx.deps.clock.now(),
      pushedBy: null,
    });
    return `Tower had not seen the head commit ${head} arrive: comment again, or name the commit`;
  }
  if (ctx.writtenAt.getTime() < known.arrivedAt.getTime()) {
    return `the pull request changed since your comment (its head is now ${head}): comment again`;
  }
  return undefined;
}

async function carryOut(
  ctx: CommandContext,
  command: Exclude<Command, { name: 'help' }>,
): Promise<Outcome> {
  const { deps } = ctx;
  const name = `\`/tower ${command.name}${'jobs' in command ? ` ${command.jobs.join(' ')}` : ''}${command.name === 'queue' ? ` ${command.action}` : ''}\``;
  if (command.name === 'ok-to-test') {
    const pr = await deps.github.pullRequest(ctx.repo, ctx.number);
    if (!pr || pr.state !== 'open')
      return { line: `${name}: the pull request is not open.`, ok: false };
    const stale = await staleComment(ctx, pr, command.sha);
    if (stale) return { line: `${name}: refused: ${stale}.`, ok: false };
    await deps.events.approveOkToTest({
      repositoryId: ctx.repositoryId,
      pullNumber: ctx.number,
      headSha: pr.headSha,
      approvedBy: ctx.login,
    });
    const pusher = (await deps.heads.head(ctx.repositoryId, ctx.number, pr.headSha))?.pushedBy;
    const untrusted =
      (await needsOkToTest(deps, ctx.repo, ctx.fullName, pr, pusher ?? null)) !== undefined;
    const outcome = await runPullRequest(deps, {
      repo: ctx.repo,
      repositoryId: ctx.repositoryId,
      fullName: ctx.fullName,
      pr,
      trust: untrusted ? 'untrusted' : 'trusted',
      dedupKey: `pull_request:${ctx.repositoryId}:${ctx.number}:${pr.headSha}`,
    });
    const what =
      outcome.kind === 'graphs'
        ? `running ${outcome.graphIds.length} graph${outcome.graphIds.length === 1 ? '' : 's'}`
        : outcome.kind === 'no-definitions'
          ? 'there is no `.tower/` to run'
          : 'its `.tower/` has errors (see the checks)';
    return {
      line: `${name}: commit \`${pr.headSha.slice(0, 12)}\` approved by @${ctx.login}: ${what}${untrusted ? ', as untrusted work' : ''}.`,
      ok: true,
    };
  }
  if (command.name === 'land' || command.name === 'unland' || command.name === 'queue') {
    return landingCommand(ctx, command, name);
  }
  if (command.name === 'approve') return approveCommand(ctx, command, name);
  const graphs = await currentGraphs(ctx);
  if (graphs.length === 0) {
    return { line: `${name}: this pull request has no graph at its head commit.`, ok: false };
  }
  if (command.name === 'cancel') {
    let cancelled = 0;
    for (const { graph } of graphs) {
      if (graph.state !== 'running') continue;
      const result = await deps.scheduler.cancel({ graphId: graph.id, reason: 'user-cancel' });
      if (result.ok) cancelled += result.transitions;
    }
    deps.onReports();
    return cancelled > 0
      ? { line: `${name}: cancelled ${cancelled} job${cancelled === 1 ? '' : 's'}.`, ok: true }
      : { line: `${name}: nothing was left to cancel.`, ok: false };
  }
  const jobs = graphs.flatMap(({ graph, jobs }) => jobs.map((job) => ({ graph, job })));
  let matching = jobs.filter(
    ({ job }) => job.state === 'done' && failedResults.has(job.result ?? ''),
  );
  if (command.name !== 'retry') {
    const matched = matchJobs(
      jobs.map(({ job }) => job.label),
      command.jobs,
    );
    if (matched.kind === 'too-complex')
      return { line: `${name}: refused: ${matched.message}.`, ok: false };
    matching = jobs.filter(({ job }) => matched.labels.has(job.label));
  }
  if (matching.length === 0) {
    return {
      line:
        command.name === 'retry'
          ? `${name}: no job has failed.`
          : `${name}: no job matches. Jobs: ${jobs
              .slice(0, 30)
              .map(({ job }) => `\`${job.label}\``)
              .join(', ')}${jobs.length > 30 ? ', …' : ''}`,
      ok: false,
    };
  }
  const done: string[] = [];
  const refused: string[] = [];
  for (const { graph, job } of matching) {
    const outcome =
      command.name === 'run'
        ? await deps.scheduler.activate({ jobId: job.id })
        : await deps.scheduler.retrigger({ jobId: job.id });
    if (outcome.ok) {
      done.push(job.label);
      await deps.reports.reopenGraphReport(graph.id, deps.clock.now());
    } else {
      refused.push(`\`${job.label}\` (${outcome.reason})`);
    }
  }
  deps.onReports();
  return summary(name, command.name === 'run' ? 'started' : 'retriggered', done, refused);
}

function summary(name: string, verb: string, done: string[], refused: string[]): Outcome {
  const parts = [
    done.length > 0 ? `${verb} ${done.map((l) => `\`${l}\``).join(', ')}` : null,
    refused.length > 0 ? `refused ${refused.join(', ')}` : null,
  ].filter((part): part is string => part !== null);
  return { line: `${name}: ${parts.join('; ')}.`, ok: done.length > 0 };
}

/** Distinct teams whose membership one approval may look up, at most. */
const MAX_APPROVER_TEAMS = 20;

/**
 * `/tower approve`: the breakpoints of the current graphs that the
 * commenter may approve, by the approvers the base branch's `.tower/`
 * names (never the pull request's own), found before any pattern is
 * matched; then the patterns, against those breakpoints only. The
 * scheduler checks the job's own approvers too: both must name them.
 */
async function approveCommand(
  ctx: CommandContext,
  command: Extract<Command, { name: 'approve' }>,
  name: string,
): Promise<Outcome> {
  const { deps } = ctx;
  const pr = await deps.github.pullRequest(ctx.repo, ctx.number);
  if (!pr || pr.state !== 'open')
    return { line: `${name}: the pull request is not open.`, ok: false };
  const breakpoints = (await currentGraphs(ctx)).flatMap(({ graph, jobs }) =>
    jobs.filter((job) => job.kind === 'breakpoint').map((job) => ({ graph, job })),
  );
  if (breakpoints.length === 0) {
    return { line: `${name}: this pull request's graphs have no breakpoint.`, ok: false };
  }
  const approversOf = await breakpointApproversOf(deps.github, ctx.repo, pr.baseRef, {
    type: 'pull_request',
    number: pr.number,
    author: pr.author,
  });
  const listed = breakpoints.map(({ graph, job }) => ({
    graph,
    job,
    approvers: approversOf.get(breakpointKey(graph.name, job.label)) ?? [],
  }));
  const teams: string[] = [];
  const asked = new Set<string>();
  for (const { approvers } of listed) {
    if (mayApprove(approvers, { login: ctx.login, teams: [] })) continue;
    for (const entry of approvers) {
      const slug = entry.startsWith('team:') ? entry.slice('team:'.length).toLowerCase() : null;
      if (slug === null || asked.has(slug) || asked.size >= MAX_APPROVER_TEAMS) continue;
      asked.add(slug);
      if (await deps.github.isTeamMember(ctx.repo, ctx.repo.owner, slug, ctx.login))
        teams.push(slug);
    }
  }
  const approver = { login: ctx.login, teams };
  const mine = listed.filter(({ approvers }) => mayApprove(approvers, approver));
  if (mine.length === 0) {
    const named = listed
      .slice(0, 5)
      .map(
        ({ job, approvers }) =>
          `\`${job.label}\`: ${approvers.join(', ') || `not on \`${pr.baseRef}\``}`,
      );
    return {
      line: `${name}: refused: @${ctx.login} may approve no breakpoint of this pull request (approvers as \`${pr.baseRef}\` names them: ${named.join('; ')}${listed.length > 5 ? '; …' : ''}).`,
      ok: false,
    };
  }
  const stale = await staleComment(ctx, pr, undefined);
  if (stale) return { line: `${name}: refused: ${stale}.`, ok: false };
  const matched = matchJobs(
    mine.map(({ job }) => job.label),
    command.jobs,
  );
  if (matched.kind === 'too-complex')
    return { line: `${name}: refused: ${matched.message}.`, ok: false };
  const chosen = mine.filter(({ job }) => matched.labels.has(job.label));
  if (chosen.length === 0) {
    return {
      line: `${name}: no breakpoint you may approve matches. Yours: ${mine
        .slice(0, 30)
        .map(({ job }) => `\`${job.label}\``)
        .join(', ')}${mine.length > 30 ? ', …' : ''}`,
      ok: false,
    };
  }
  const done: string[] = [];
  const refused: string[] = [];
  for (const { job } of chosen) {
    const outcome = await deps.scheduler.approve({ jobId: job.id, approver });
    if (outcome.ok) done.push(job.label);
    else refused.push(`\`${job.label}\` (${outcome.reason})`);
  }
  deps.onReports();
  return summary(name, 'approved', done, refused);
}

async function landingCommand(
  ctx: CommandContext,
  command: Extract<Command, { name: 'land' | 'unland' | 'queue' }>,
  name: string,
): Promise<Outcome> {
  const { deps } = ctx;
  if (!deps.landing) return { line: `${name}: this Tower has no landing queue.`, ok: false };
  if (command.name === 'land') {
    const pr = await deps.github.pullRequest(ctx.repo, ctx.number);
    if (!pr || pr.state !== 'open')
      return { line: `${name}: refused: the pull request is not open`, ok: false };
    const stale = await staleComment(ctx, pr, command.sha);
    if (stale) return { line: `${name}: refused: ${stale}.`, ok: false };
    const outcome = await deps.landing.land({
      repositoryId: ctx.repositoryId,
      installationId: ctx.repo.installationId,
      fullName: ctx.fullName,
      number: ctx.number,
      by: ctx.login,
      priority: command.priority,
      single: command.single,
      headSha: pr.headSha,
    });
    return { line: `${name}: ${outcome.ok ? '' : 'refused: '}${outcome.message}`, ok: outcome.ok };
  }
  if (command.name === 'unland') {
    const taken = await deps.landing.unland({
      repositoryId: ctx.repositoryId,
      number: ctx.number,
      reason: `@${ctx.login} asked`,
    });
    return taken
      ? { line: `${name}: taken out of the landing queue.`, ok: true }
      : { line: `${name}: the pull request is not in a landing queue.`, ok: false };
  }
  const pr = await deps.github.pullRequest(ctx.repo, ctx.number);
  const base = pr?.baseRef ?? '';
  const changed = await deps.landing.setMode(
    { repositoryId: ctx.repositoryId, baseBranch: base },
    command.action,
    ctx.login,
  );
  return changed
    ? {
        line: `${name}: the landing queue of \`${base}\` is ${command.action === 'pause' ? 'paused' : command.action === 'resume' ? 'running' : 'draining'}.`,
        ok: true,
      }
    : { line: `${name}: \`${base}\` has no landing queue yet.`, ok: false };
}

/** The Re-run button of one check run: its job runs again (a group's or a summary's failed jobs). */
export async function onCheckRun(deps: GitHubHandlerDeps, payload: CheckRunPayload): Promise<void> {
  const found = await deps.checkRuns.byGithubId(payload.check_run.id);
  if (!found || found.graphId === null) return;
  const identifier =
    payload.action === 'requested_action' ? payload.requested_action?.identifier : 'rerequested';
  const repo = refOf(payload.repository, payload.installation.id);
  const permission = await deps.github.permission(repo, payload.sender.login);
  if (!hasPermission(permission, 'write')) {
    deps.logger.warn(
      { sender: payload.sender.login, permission, checkRun: payload.check_run.id },
      'Re-run refused: the user cannot write to the repository',
    );
    return;
  }
  const status = await deps.scheduler.graphStatus({ graphId: found.graphId });
  if (!status) return;
  const jobId = found.key.startsWith('job:') ? Number(found.key.slice('job:'.length)) : undefined;
  const failed = status.jobs.filter(
    (job) => job.state === 'done' && failedResults.has(job.result ?? ''),
  );
  let targets: number[];
  if (identifier === 'run' && jobId !== undefined) {
    await deps.scheduler.activate({ jobId });
    targets = [];
  } else if (identifier === 'retry-failed' || jobId === undefined) {
    targets = failed.map((job) => job.id);
  } else {
    targets = [jobId];
  }
  for (const id of targets) await deps.scheduler.retrigger({ jobId: id });
  await deps.reports.reopenGraphReport(found.graphId, deps.clock.now());
  deps.onReports();
}

/** The Re-run of a whole check suite: the failed jobs of the commit's graphs run again. */
export async function onCheckSuite(
  deps: GitHubHandlerDeps,
  payload: CheckSuitePayload,
): Promise<void> {
  const repo = refOf(payload.repository, payload.installation.id);
  const permission = await deps.github.permission(repo, payload.sender.login);
  if (!hasPermission(permission, 'write')) return;
  const graphIds = await deps.events.graphsOfSha(
    payload.repository.id,
    payload.check_suite.head_sha,
  );
  for (const graphId of graphIds) {
    const status = await deps.scheduler.graphStatus({ graphId });
    if (!status) continue;
    let any = false;
    for (const job of status.jobs) {
      if (job.state === 'done' && failedResults.has(job.result ?? '')) {
        any = (await deps.scheduler.retrigger({ jobId: job.id })).ok || any;
      }
    }
    if (any) await deps.reports.reopenGraphReport(graphId, deps.clock.now());
  }
  deps.onReports();
}

/**
 * A review submitted or dismissed: a queued pull request whose approval it
 * took away, or on which changes are now requested, leaves the queue.
 */
async function onPullRequestReview(
  deps: GitHubHandlerDeps,
  payload: PullRequestReviewPayload,
): Promise<void> {
  await deps.landing?.reviewed({
    ...refOf(payload.repository, payload.installation.id),
    repositoryId: payload.repository.id,
    number: payload.pull_request.number,
  });
}

/** Registers the handlers on Probot: each parses its payload, then calls the domain. */
export function registerEventHandlers(app: Probot, deps: GitHubHandlerDeps): void {
  app.on('push', async ({ payload }) => onPush(deps, parsePayload(PushPayload, 'push', payload)));
  app.on(
    [
      'pull_request.opened',
      'pull_request.synchronize',
      'pull_request.reopened',
      'pull_request.closed',
      'pull_request.ready_for_review',
      'pull_request.converted_to_draft',
      'pull_request.labeled',
    ],
    async ({ payload, id }) =>
      onPullRequest(deps, parsePayload(PullRequestPayload, 'pull_request', payload), id),
  );
  app.on(['pull_request_review.submitted', 'pull_request_review.dismissed'], async ({ payload }) =>
    onPullRequestReview(
      deps,
      parsePayload(PullRequestReviewPayload, 'pull_request_review', payload),
    ),
  );
  app.on('issue_comment.created', async ({ payload }) =>
    onIssueComment(deps, parsePayload(IssueCommentPayload, 'issue_comment', payload)),
  );
  app.on(['check_run.rerequested', 'check_run.requested_action'], async ({ payload }) =>
    onCheckRun(deps, parsePayload(CheckRunPayload, 'check_run', payload)),
  );
  app.on('check_suite.rerequested', async ({ payload }) =>
    onCheckSuite(deps, parsePayload(CheckSuitePayload, 'check_suite', payload)),
  );
}
