/**
 * Graph reports for check runs (src/lib/graph-report.ts): a graph's jobs
 * with their latest runs, and, for check runs that show jobs one by one,
 * each finished job's log excerpt, artifacts and annotations.
 *
 * A job's annotations come from its artifact `tower-annotations.json`
 * (docs/checks.md): `{ "version": 1, "annotations": [{ path, start_line,
 * end_line, annotation_level, message, title? }] }`, at most 1,000.
 */
import { z } from 'zod';
import type { TowerDb } from '../db/connection.js';
import { createMinionQueries } from '../db/minions.js';
import type { Annotation, GraphReport, ReportJob } from '../lib/graph-report.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ArtifactStore } from './artifact-store.js';
import { createUrls } from './urls.js';

export const ANNOTATIONS_ARTIFACT = 'tower-annotations.json';
const MAX_ANNOTATIONS = 1000;
const MAX_ANNOTATIONS_BYTES = 1024 * 1024;
/** A log this long or shorter is shown whole; a longer one as its head and tail. */
const WHOLE_LOG_CHARS = 40_000;
const HEAD_CHARS = 8_000;
const TAIL_CHARS = 30_000;

const AnnotationSchema = z.object({
  path: z.string().min(1).max(1000),
  start_line: z.number().int().min(1),
  end_line: z.number().int().min(1),
  annotation_level: z.enum(['notice', 'warning', 'failure']),
  message: z
    .string()
    .min(1)
    .max(64 * 1024),
  title: z.string().max(255).optional(),
});

export const AnnotationsFile = z.object({
  version: z.literal(1),
  annotations: z.array(AnnotationSchema).max(MAX_ANNOTATIONS),
});

export function createGraphReports(deps: {
  db: TowerDb;
  scheduler: Pick<Scheduler, 'graphStatus'>;
  artifacts: ArtifactStore;
  publicUrl: string;
}) {
  const queries = createMinionQueries(deps.db);
  const urls = createUrls(deps.publicUrl);

  async function annotationsOf(
    runId: number,
  ): Promise<{ annotations: Annotation[]; notes: string[] }> {
    const row = await queries.artifact(runId, ANNOTATIONS_ARTIFACT);
    if (!row) return { annotations: [], notes: [] };
    if (row.size > MAX_ANNOTATIONS_BYTES) {
      return { annotations: [], notes: [`${ANNOTATIONS_ARTIFACT} is larger than 1 MiB: ignored`] };
    }
    const body = await deps.artifacts.get(row.storageKey);
    if (!body) return { annotations: [], notes: [] };
    const text = await new Response(body).text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { annotations: [], notes: [`${ANNOTATIONS_ARTIFACT} is not JSON: ignored`] };
    }
    const parsed = AnnotationsFile.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return {
        annotations: [],
        notes: [
          `${ANNOTATIONS_ARTIFACT} is not valid (${issue.path.join('.') || 'file'}: ${issue.message}): ignored`,
        ],
      };
    }
    return { annotations: parsed.data.annotations, notes: [] };
  }

  async function logOf(runId: number): Promise<ReportJob['log']> {
    const ends = await queries.logEnds(runId, 2);
    if (ends.count === 0) return { head: '', tail: '', omitted: 0 };
    if (ends.count <= 2 && ends.chars <= WHOLE_LOG_CHARS) {
      return { head: ends.first.join('').trimEnd(), tail: '', omitted: 0 };
    }
    const start = ends.first.join('');
    const end = ends.last.join('');
    // Cut at line ends, so that no line shows half.
    const headCut = start.lastIndexOf('\n', HEAD_CHARS);
    const head = start.slice(0, headCut > 0 ? headCut : HEAD_CHARS);
    const tailStart = end.length - TAIL_CHARS;
    const tailCut = tailStart <= 0 ? 0 : end.indexOf('\n', tailStart) + 1;
    const tail = end.slice(tailCut > 0 ? tailCut : Math.max(0, tailStart)).trimEnd();
    return { head, tail, omitted: Math.max(0, ends.chars - head.length - tail.length) };
  }

  return {
    /**
     * The graph as its check runs show it; a graph of at most `detailsUpTo`
     * jobs (shown a check run a job) also gets each finished job's log,
     * artifacts and annotations.
     */
    async report(
      graphId: number,
      options: { detailsUpTo: number },
    ): Promise<GraphReport | undefined> {
      const status = await deps.scheduler.graphStatus({ graphId });
      if (!status) return undefined;
      const details = status.jobs.length <= options.detailsUpTo;
      const latest = status.jobs.map((job) => job.runs[job.runs.length - 1]);
      const names = await queries.minionNames([
        ...new Set(latest.flatMap((run) => (run?.minionId ? [run.minionId] : []))),
      ]);
      const jobs: ReportJob[] = [];
      for (const [i, job] of status.jobs.entries()) {
        const run = latest[i];
        const finished = details && run !== undefined && run.state === 'done';
        const [log, artifacts, notes] = finished
          ? await Promise.all([
              logOf(run.id),
              queries.artifactsOfRun(run.id),
              annotationsOf(run.id),
            ])
          : [null, [], { annotations: [], notes: [] }];
        jobs.push({
          id: job.id,
          label: job.label,
          kind: job.kind,
          state: job.state,
          result: job.result,
          reason: job.reason,
          run: run
            ? {
                id: run.id,
                attempt: run.attempt,
                minion: run.minionId === null ? null : (names.get(run.minionId) ?? null),
                exitCode: run.exitCode,
                startedAt: run.startedAt,
                finishedAt: run.finishedAt,
              }
            : null,
          log,
          artifacts: artifacts
            .filter((a) => a.name !== ANNOTATIONS_ARTIFACT)
            .map((a) => ({ name: a.name, size: a.size, url: urls.artifact(run!.id, a.name) })),
          annotations: notes.annotations,
          notes: notes.notes,
          source: job.source ? { file: job.source.file, line: job.source.line } : null,
        });
      }
      const { graph } = status;
      return {
        graphId: graph.id,
        name: graph.name,
        sha: graph.sha,
        state: graph.state,
        result: graph.result,
        createdAt: graph.createdAt,
        finishedAt: graph.finishedAt,
        jobs,
        urls: {
          graph: `${deps.publicUrl}/graphs/${graph.id}`,
          job: (jobId) => `${deps.publicUrl}/jobs/${jobId}`,
          log: (runId) => urls.log(runId),
        },
      };
    },
  };
}

export type GraphReports = ReturnType<typeof createGraphReports>;
