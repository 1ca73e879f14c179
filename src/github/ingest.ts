/**
 * An event becomes graphs: the repository's `.tower/`
 * definitions are read at the event's commit through the port, the
 * schedulers pick the graphs, each is stored with its check report. A
 * repository without `.tower/` gets nothing and no noise; definitions with
 * errors get one failing check run with annotations at the offending lines.
 *
 * Idempotent, because webhooks are redelivered: the event is stored once
 * by its dedup key, graphs once per event and name, reports once per graph.
 */
import { generateGraphs, type DefinitionsEvent } from '../definitions/index.js';
import { renderDefinitionErrors } from '../checks/render.js';
import type { EventType } from '../lib/graph-spec.js';
import type { Logger } from '../lib/logger.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { GitHubPort, RepoRef } from './port.js';

export type EventStore = {
  recordEvent(event: {
    repositoryId: number;
    type: EventType;
    dedupKey: string;
    sha: string;
    ref: string | null;
    author: string | null;
    pullNumber: number | null;
    payload: Record<string, unknown>;
  }): Promise<{ id: number; created: boolean }>;
  runningGraphsOfPull(
    repositoryId: number,
    pullNumber: number,
    exceptEventId: number | null,
  ): Promise<number[]>;
  latestOfPull(
    repositoryId: number,
    pullNumber: number,
  ): Promise<{ eventId: number; sha: string; graphIds: number[] } | undefined>;
  graphsOfSha(repositoryId: number, sha: string): Promise<number[]>;
  approveOkToTest(input: {
    repositoryId: number;
    pullNumber: number;
    headSha: string;
    approvedBy: string;
  }): Promise<void>;
  isOkToTest(repositoryId: number, pullNumber: number, headSha: string): Promise<boolean>;
};

export type ReportStore = {
  addGraphReport(input: {
    eventId: number;
    graphId: number;
    repositoryId: number;
    installationId: number;
    headSha: string;
  }): Promise<number>;
  addStaticReport(input: {
    eventId: number;
    repositoryId: number;
    installationId: number;
    headSha: string;
    checkRun: unknown;
  }): Promise<void>;
  reopenGraphReport(graphId: number, now: Date): Promise<void>;
};

export type IngestDeps = {
  github: GitHubPort;
  events: EventStore;
  reports: ReportStore;
  scheduler: Pick<Scheduler, 'createGraph' | 'cancel'>;
  /** New reports to publish: the publisher looks now. */
  onReports: () => void;
  publicUrl: string;
  logger: Logger;
};

export type IngestInput = {
  repo: RepoRef;
  repositoryId: number;
  type: EventType;
  dedupKey: string;
  /** The branch pushed to, or a pull request's base branch. */
  branch: string;
  sha: string;
  ref: string | null;
  author: string;
  pullNumber: number | null;
  trust: 'trusted' | 'untrusted';
  /**
   * Whether the graphs are for commits on a branch GitHub protects: only
   * such push graphs may reach restricted minions. Asked only when there
   * are graphs to store.
   */
  protectedBranch: () => Promise<boolean>;
  /** Asked only when there are definitions to apply its path filters. */
  changedFiles: () => Promise<string[] | null>;
  payload: Record<string, unknown>;
};

export type IngestOutcome =
  | { kind: 'no-definitions'; eventId: number }
  | { kind: 'definition-errors'; eventId: number; errors: number }
  | { kind: 'graphs'; eventId: number; graphIds: number[] };

/** Whether the message asks for no CI: `[skip ci]`, `[ci skip]`, `[skip tower]`, `[tower skip]`. */
export function skipsCi(message: string): boolean {
  return /\[(skip ci|ci skip|skip tower|tower skip|no ci)\]/i.test(message);
}

export async function ingest(deps: IngestDeps, input: IngestInput): Promise<IngestOutcome> {
  const event = await deps.events.recordEvent({
    repositoryId: input.repositoryId,
    type: input.type,
    dedupKey: input.dedupKey,
    sha: input.sha,
    ref: input.ref,
    author: input.author,
    pullNumber: input.pullNumber,
    payload: input.payload,
  });
  const files = await deps.github.readTowerFiles(input.repo, input.sha);
  if (files.length === 0) return { kind: 'no-definitions', eventId: event.id };
  const definitionsEvent: DefinitionsEvent = {
    type: input.type,
    branch: input.branch,
    sha: input.sha,
    changedFiles: await input.changedFiles(),
    ...(input.pullNumber === null ? {} : { number: input.pullNumber }),
    author: input.author,
  };
  const { specs, diagnostics } = generateGraphs(files, definitionsEvent);
  const report = {
    eventId: event.id,
    repositoryId: input.repositoryId,
    installationId: input.repo.installationId,
    headSha: input.sha,
  };
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    await deps.reports.addStaticReport({
      ...report,
      checkRun: renderDefinitionErrors({
        sha: input.sha,
        errors: diagnostics,
        detailsUrl: `${deps.publicUrl}/docs/definitions`,
      }),
    });
    deps.onReports();
    deps.logger.info(
      { repositoryId: input.repositoryId, sha: input.sha, errors: errors.length },
      'definitions have errors: reported on the commit',
    );
    return { kind: 'definition-errors', eventId: event.id, errors: errors.length };
  }
  const graphIds: number[] = [];
  const protectedBranch = specs.length > 0 && (await input.protectedBranch());
  for (const spec of specs) {
    const { graphId } = await deps.scheduler.createGraph({
      repositoryId: input.repositoryId,
      eventId: event.id,
      spec,
      trust: input.trust,
      protectedBranch,
    });
    await deps.reports.addGraphReport({ ...report, graphId });
    graphIds.push(graphId);
  }
  if (graphIds.length > 0) deps.onReports();
  deps.logger.info(
    { repositoryId: input.repositoryId, sha: input.sha, type: input.type, graphIds },
    'event ingested',
  );
  return { kind: 'graphs', eventId: event.id, graphIds };
}
