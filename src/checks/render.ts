/**
 * Graph and job state as GitHub check runs.
 * Pure: a report of the graph goes in, the check runs it should show come
 * out; src/checks/publisher.ts sends what changed.
 *
 * - One check run per job, plus one summary per graph. A graph with more
 *   jobs than `maxJobCheckRuns` is shown as grouped check runs instead (one
 *   per label prefix, `test/1` … `test/8` → `test`), so that a huge graph
 *   stays inside GitHub's content-creation budget; every job is still in
 *   some check run's table.
 * - Status: inactive jobs are completed as `skipped` at once (never pending
 *   forever), blocked and pending are `queued`, running is `in_progress`,
 *   done is `completed` with the conclusion of its result.
 * - Conclusions: success → success, warning → neutral, failure and
 *   exception → failure (the reason says which), timed-out → timed_out,
 *   cancelled → cancelled, skipped → skipped.
 */
import { resultSeverity } from '../graph/chunks.js';
import type { JobResult } from '../lib/graph-spec.js';
import type { Annotation, GraphReport, ReportJob } from '../lib/graph-report.js';

export type { Annotation, GraphReport, ReportJob };

/** GitHub's limits on a check run's output. */
export const MAX_OUTPUT_CHARS = 65_535;
export const MAX_TITLE_CHARS = 255;
/** GitHub takes at most 50 annotations a request; more go in later updates. */
export const ANNOTATIONS_PER_REQUEST = 50;
/** Beyond this many jobs, a graph is shown as grouped check runs. */
export const DEFAULT_MAX_JOB_CHECK_RUNS = 50;
/** Grouped check runs of one graph, at most. */
export const MAX_GROUPS = 20;

export type Conclusion =
  'success' | 'neutral' | 'failure' | 'timed_out' | 'cancelled' | 'skipped' | 'action_required';

export type CheckStatus = 'queued' | 'in_progress' | 'completed';

export type CheckAction = { label: string; description: string; identifier: string };

/** A check run as it should be now; `key` names it among the graph's check runs. */
export type DesiredCheckRun = {
  key: string;
  name: string;
  externalId: string;
  detailsUrl: string;
  status: CheckStatus;
  conclusion: Conclusion | null;
  startedAt: Date | null;
  completedAt: Date | null;
  output: { title: string; summary: string; text: string | null };
  annotations: Annotation[];
  actions: CheckAction[];
};

export const ACTIONS = {
  retrigger: { label: 'Retrigger', description: 'Run this job again', identifier: 'retrigger' },
  retryFailed: {
    label: 'Retry failed',
    description: 'Run every failed job again',
    identifier: 'retry-failed',
  },
  run: { label: 'Run', description: 'Run this inactive job', identifier: 'run' },
} as const satisfies Record<string, CheckAction>;

export function conclusionOf(result: JobResult): Conclusion {
  switch (result) {
    case 'success':
      return 'success';
    case 'warning':
      return 'neutral';
    case 'failure':
    case 'exception':
      return 'failure';
    case 'timed-out':
      return 'timed_out';
    case 'cancelled':
      return 'cancelled';
    case 'skipped':
      return 'skipped';
  }
}

const failed = (result: JobResult | null) =>
  result === 'failure' || result === 'exception' || result === 'timed-out';

export const summaryKey = 'summary';
export const jobKey = (jobId: number) => `job:${jobId}`;
export const groupKey = (group: string) => `group:${group}`;

/** The check runs a graph report shows: the summary first, then its jobs or groups. */
export function renderCheckRuns(
  report: GraphReport,
  options: { maxJobCheckRuns?: number } = {},
): DesiredCheckRun[] {
  const max = options.maxJobCheckRuns ?? DEFAULT_MAX_JOB_CHECK_RUNS;
  const parts =
    report.jobs.length <= max
      ? report.jobs.map((job) => renderJob(report, job))
      : groupJobs(report.jobs).map(([group, jobs]) => renderGroup(report, group, jobs));
  return [renderSummary(report), ...parts];
}

/**
 * Jobs grouped by the part of their label before the first `/` (a chunked
 * job's chunks together); when that gives more than MAX_GROUPS, runs of
 * neighbouring groups in label order are merged until it does not.
 */
export function groupJobs(jobs: readonly ReportJob[]): [string, ReportJob[]][] {
  const byPrefix = new Map<string, ReportJob[]>();
  for (const job of [...jobs].sort((a, b) => (a.label < b.label ? -1 : 1))) {
    const prefix = job.label.split('/')[0]!;
    const list = byPrefix.get(prefix);
    if (list) list.push(job);
    else byPrefix.set(prefix, [job]);
  }
  const groups = [...byPrefix.entries()];
  if (groups.length <= MAX_GROUPS) return groups;
  const per = Math.ceil(groups.length / MAX_GROUPS);
  const merged: [string, ReportJob[]][] = [];
  for (let i = 0; i < groups.length; i += per) {
    const run = groups.slice(i, i + per);
    const name = run.length === 1 ? run[0]![0] : `${run[0]![0]} … ${run[run.length - 1]![0]}`;
    merged.push([name, run.flatMap(([, list]) => list)]);
  }
  return merged;
}

function renderJob(report: GraphReport, job: ReportJob): DesiredCheckRun {
  const base = {
    key: jobKey(job.id),
    name: `${report.name} / ${job.label}`,
    externalId: `tower:${report.graphId}:${job.id}`,
    detailsUrl: report.urls.job(job.id),
    startedAt: job.run?.startedAt ?? null,
    annotations: job.annotations,
  };
  if (job.state === 'inactive') {
    return {
      ...base,
      status: 'completed',
      conclusion: 'skipped',
      completedAt: report.createdAt,
      output: {
        title: 'Not run: inactive',
        summary: `${job.label} is in the graph but does not run by default. Comment \`/tower run ${job.label}\`, or press Run, to run it.`,
        text: null,
      },
      actions: [ACTIONS.run],
    };
  }
  if (job.state !== 'done' || job.result === null) {
    const running = job.state === 'running';
    return {
      ...base,
      status: running ? 'in_progress' : 'queued',
      conclusion: null,
      completedAt: null,
      output: {
        title: running ? 'Running' : job.state === 'pending' ? 'Waiting for a minion' : 'Waiting',
        summary: [
          running
            ? `Running${job.run?.minion ? ` on ${job.run.minion}` : ''}${attemptNote(job)}.`
            : job.state === 'pending'
              ? 'Ready to run: waiting for a minion with its tags.'
              : 'Waiting for the jobs it needs.',
          links(report, job),
        ].join('\n\n'),
        text: null,
      },
      actions: [],
    };
  }
  return {
    ...base,
    status: 'completed',
    conclusion: conclusionOf(job.result),
    completedAt: job.run?.finishedAt ?? report.finishedAt ?? report.createdAt,
    output: {
      title: clip(jobTitle(job), MAX_TITLE_CHARS),
      summary: clip(jobSummary(report, job), MAX_OUTPUT_CHARS),
      text: job.log === null ? null : clip(logText(job.log), MAX_OUTPUT_CHARS),
    },
    actions: failed(job.result) ? [ACTIONS.retrigger, ACTIONS.retryFailed] : [ACTIONS.retrigger],
  };
}

function attemptNote(job: ReportJob): string {
  return job.run && job.run.attempt > 1 ? `, attempt ${job.run.attempt}` : '';
}

function jobTitle(job: ReportJob): string {
  const result = job.result!;
  const reason = job.reason ? `: ${reasonText(job.reason)}` : '';
  if (result === 'failure' && job.run?.exitCode != null && !job.reason) {
    return `failure: exit code ${job.run.exitCode}`;
  }
  return `${result}${reason}`;
}

const reasonTexts: Record<string, string> = {
  'path-filter': 'no changed file matches its path filter',
  'dependency-result': 'a job it needs did not end as it required',
  'request-timeout': 'no minion took it before its request timeout',
  'max-runtime': 'it ran past its max runtime',
  'idle-timeout': 'it printed nothing for its idle timeout',
  'claim-expired': "its minion stopped answering (the claim's lease lapsed)",
  'minion-shutdown': 'its minion shut down and handed it back',
  'user-cancel': 'cancelled on request',
  superseded: 'a newer push superseded it',
};

export const reasonText = (reason: string) => reasonTexts[reason] ?? reason;

function duration(from: Date | null, to: Date | null): string | null {
  if (!from || !to) return null;
  const seconds = Math.max(0, Math.round((to.getTime() - from.getTime()) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes} min ${seconds % 60} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function jobSummary(report: GraphReport, job: ReportJob): string {
  const lines: string[] = [];
  const took = duration(job.run?.startedAt ?? null, job.run?.finishedAt ?? null);
  const facts = [
    `**${job.result}**${job.reason ? ` (${job.reason}: ${reasonText(job.reason)})` : ''}`,
    job.run?.exitCode != null ? `exit code ${job.run.exitCode}` : null,
    took ? `took ${took}` : null,
    job.run?.minion ? `on ${job.run.minion}` : null,
    job.run ? `attempt ${job.run.attempt}` : null,
  ].filter((fact): fact is string => fact !== null);
  lines.push(facts.join(' · '));
  if (job.artifacts.length > 0) {
    lines.push(
      '**Artifacts**',
      job.artifacts
        .map((a) => `- [${escapeMarkdown(a.name)}](${a.url}) (${a.size} bytes)`)
        .join('\n'),
    );
  }
  lines.push(...job.notes.map((note) => `> ${note}`));
  lines.push(links(report, job));
  return lines.join('\n\n');
}

function links(report: GraphReport, job: ReportJob): string {
  const parts = [`[Job](${report.urls.job(job.id)})`];
  if (job.run) parts.push(`[Log](${report.urls.log(job.run.id)})`);
  parts.push(`[Graph](${report.urls.graph})`);
  if (job.source) parts.push(`defined at \`${job.source.file}:${job.source.line}\``);
  return parts.join(' · ');
}

function logText(log: NonNullable<ReportJob['log']>): string {
  const fence = '```';
  if (log.omitted === 0 && log.tail === '') return `${fence}\n${log.head}\n${fence}`;
  return [
    `${fence}\n${log.head}\n${fence}`,
    `… ${log.omitted} characters left out: the whole log is behind the Log link …`,
    `${fence}\n${log.tail}\n${fence}`,
  ].join('\n\n');
}

type Tally = Partial<Record<JobResult | 'inactive' | 'running' | 'waiting', number>>;

function tally(jobs: readonly ReportJob[]): Tally {
  const counts: Tally = {};
  for (const job of jobs) {
    const key =
      job.state === 'done' && job.result !== null
        ? job.result
        : job.state === 'inactive'
          ? 'inactive'
          : job.state === 'running'
            ? 'running'
            : 'waiting';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const tallyOrder = [...resultSeverity, 'running', 'waiting', 'inactive'] as const;

function tallyText(counts: Tally): string {
  return tallyOrder
    .filter((key) => counts[key])
    .map((key) => `${counts[key]} ${key}`)
    .join(', ');
}

/** The worst result among done jobs; null while any active job is not done. */
function worstOf(jobs: readonly ReportJob[]): JobResult | null {
  let worst: JobResult | null = null;
  for (const job of jobs) {
    if (job.state === 'inactive') continue;
    if (job.state !== 'done' || job.result === null) return null;
    if (worst === null || resultSeverity.indexOf(job.result) < resultSeverity.indexOf(worst)) {
      worst = job.result;
    }
  }
  return worst;
}

function statusOfMany(jobs: readonly ReportJob[], done: boolean): CheckStatus {
  if (done) return 'completed';
  return jobs.some((job) => job.state === 'running' || job.state === 'done')
    ? 'in_progress'
    : 'queued';
}

function jobTable(report: GraphReport, jobs: readonly ReportJob[], room: number): string {
  const header = '| job | state | result | reason |\n| --- | --- | --- | --- |';
  const rows: string[] = [];
  let used = header.length;
  // Failures first: they are what a reader looks for.
  const sorted = [...jobs].sort((a, b) => {
    const fa = failed(a.result) ? 0 : 1;
    const fb = failed(b.result) ? 0 : 1;
    return fa - fb || (a.label < b.label ? -1 : 1);
  });
  for (const [i, job] of sorted.entries()) {
    const row = `| [${escapeMarkdown(job.label)}](${report.urls.job(job.id)}) | ${job.state} | ${job.result ?? ''} | ${job.reason ?? ''} |`;
    const rest = `\n\n… and ${sorted.length - i} more jobs: see the [graph](${report.urls.graph}).`;
    if (used + row.length + 1 + rest.length > room) {
      rows.push(rest.trimStart());
      break;
    }
    rows.push(row);
    used += row.length + 1;
  }
  return [header, ...rows].join('\n');
}

function renderGroup(report: GraphReport, group: string, jobs: ReportJob[]): DesiredCheckRun {
  const worst = worstOf(jobs);
  const done = worst !== null || jobs.every((job) => job.state === 'inactive');
  const counts = tally(jobs);
  const starts = jobs.flatMap((job) => (job.run?.startedAt ? [job.run.startedAt.getTime()] : []));
  const ends = jobs.flatMap((job) => (job.run?.finishedAt ? [job.run.finishedAt.getTime()] : []));
  const failedJobs = jobs.filter((job) => failed(job.result));
  const summary = `${jobs.length} jobs: ${tallyText(counts)}.`;
  return {
    key: groupKey(group),
    name: `${report.name} / ${group} (${jobs.length} jobs)`,
    externalId: `tower:${report.graphId}:group:${group}`,
    detailsUrl: report.urls.graph,
    status: statusOfMany(jobs, done),
    conclusion: done ? (worst === null ? 'skipped' : conclusionOf(worst)) : null,
    startedAt: starts.length > 0 ? new Date(Math.min(...starts)) : null,
    completedAt: done
      ? ends.length > 0
        ? new Date(Math.max(...ends))
        : (report.finishedAt ?? report.createdAt)
      : null,
    output: {
      title: clip(summary, MAX_TITLE_CHARS),
      summary: clip(
        `${summary}\n\nThis graph has more jobs than Tower reports one by one, so its jobs are grouped by label.`,
        MAX_OUTPUT_CHARS,
      ),
      text: jobTable(report, jobs, MAX_OUTPUT_CHARS),
    },
    annotations: jobs.flatMap((job) => job.annotations),
    actions: failedJobs.length > 0 ? [ACTIONS.retryFailed] : [],
  };
}

function renderSummary(report: GraphReport): DesiredCheckRun {
  const counts = tally(report.jobs);
  const done = report.state === 'done' && report.result !== null;
  const failedJobs = report.jobs.filter((job) => failed(job.result));
  const title = done
    ? `${report.result}: ${tallyText(counts)}`
    : `${tallyText(counts) || 'no jobs'}`;
  const summary = [
    `Graph **${escapeMarkdown(report.name)}** for \`${report.sha.slice(0, 12)}\`: ${report.jobs.length} jobs. [Graph](${report.urls.graph})`,
    failedJobs.length > 0
      ? `**Failed**\n\n${failedJobs
          .slice(0, 50)
          .map(
            (job) =>
              `- [${escapeMarkdown(job.label)}](${report.urls.job(job.id)}): ${job.result}${job.reason ? ` (${job.reason})` : ''}`,
          )
          .join(
            '\n',
          )}${failedJobs.length > 50 ? `\n- … and ${failedJobs.length - 50} more` : ''}\n\nComment \`/tower retry\` (or press Retry failed) to run them again.`
      : null,
  ]
    .filter((part): part is string => part !== null)
    .join('\n\n');
  const started = report.jobs.flatMap((job) =>
    job.run?.startedAt ? [job.run.startedAt.getTime()] : [],
  );
  return {
    key: summaryKey,
    name: `Tower: ${report.name}`,
    externalId: `tower:${report.graphId}`,
    detailsUrl: report.urls.graph,
    status: done ? 'completed' : started.length > 0 ? 'in_progress' : 'queued',
    conclusion: done ? graphConclusion(report.result!) : null,
    startedAt: started.length > 0 ? new Date(Math.min(...started)) : null,
    completedAt: done ? (report.finishedAt ?? report.createdAt) : null,
    output: {
      title: clip(title, MAX_TITLE_CHARS),
      summary: clip(summary, MAX_OUTPUT_CHARS),
      text: jobTable(report, report.jobs, MAX_OUTPUT_CHARS),
    },
    annotations: [],
    actions: failedJobs.length > 0 ? [ACTIONS.retryFailed] : [],
  };
}

function graphConclusion(result: string): Conclusion {
  return result === 'success' ? 'success' : result === 'cancelled' ? 'cancelled' : 'failure';
}

/** Definition errors: a failing check run with annotations at the offending `.tower/` lines. */
export function renderDefinitionErrors(input: {
  sha: string;
  errors: {
    file: string;
    line: number;
    column: number;
    message: string;
    severity: 'error' | 'warning';
  }[];
  detailsUrl: string;
}): DesiredCheckRun {
  const errors = input.errors.filter((e) => e.severity === 'error');
  const warnings = input.errors.length - errors.length;
  const list = input.errors
    .slice(0, 100)
    .map((e) => `- \`${e.file}:${e.line}:${e.column}\` ${e.severity}: ${escapeMarkdown(e.message)}`)
    .join('\n');
  return {
    key: 'definitions',
    name: 'Tower: .tower/',
    externalId: 'tower:definitions',
    detailsUrl: input.detailsUrl,
    status: 'completed',
    conclusion: 'failure',
    startedAt: null,
    completedAt: null,
    output: {
      title: clip(
        `${errors.length} error${errors.length === 1 ? '' : 's'} in .tower/${warnings > 0 ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`,
        MAX_TITLE_CHARS,
      ),
      summary: clip(
        `Tower could not build this commit's graphs: its \`.tower/\` definitions have mistakes. Nothing ran.\n\n${list}${input.errors.length > 100 ? `\n- … and ${input.errors.length - 100} more` : ''}\n\nRun \`npx tower graph check\` in a checkout to see them all.`,
        MAX_OUTPUT_CHARS,
      ),
      text: null,
    },
    annotations: input.errors.map((e) => ({
      path: e.file,
      start_line: e.line,
      end_line: e.line,
      annotation_level: e.severity === 'error' ? 'failure' : 'warning',
      message: e.message,
      title: 'Tower definitions',
    })),
    actions: [],
  };
}

/** Cuts text to GitHub's limit, saying so. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = '\n\n… (cut to fit GitHub’s limit)';
  return text.slice(0, max - note.length) + note;
}

/** Labels and names are the repository's: nothing in them may be taken as Markdown. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!|<>]/g, (c) => `\\${c}`);
}
