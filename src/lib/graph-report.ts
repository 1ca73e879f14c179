/**
 * A graph as its check runs show it (src/checks/render.ts): the jobs with
 * their latest run, log excerpt, artifacts and annotations. The contract
 * between the read side that builds it (src/minions/reports.ts) and the
 * check-run rendering, in the way src/lib/graph-spec.ts is between
 * definitions and the graph model.
 */
import type { JobResult } from './graph-spec.js';

export type JobStateName = 'inactive' | 'blocked' | 'pending' | 'running' | 'done';

export type Annotation = {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: 'notice' | 'warning' | 'failure';
  message: string;
  title?: string;
};

export type ReportJob = {
  id: number;
  label: string;
  kind: string;
  state: JobStateName;
  result: JobResult | null;
  reason: string | null;
  /** The latest run, if the job has run. */
  run: {
    id: number;
    attempt: number;
    minion: string | null;
    exitCode: number | null;
    startedAt: Date | null;
    finishedAt: Date | null;
  } | null;
  /** The latest run's log, its beginning and end, once it has ended; `omitted` characters between. */
  log: { head: string; tail: string; omitted: number } | null;
  artifacts: { name: string; url: string; size: number }[];
  /** From the job's annotation artifact (docs/checks.md). */
  annotations: Annotation[];
  /** What a reader of the check run should know beside: an unreadable annotation artifact, say. */
  notes: string[];
  /** Where the job is defined, for people reading the check run. */
  source: { file: string; line: number } | null;
};

export type GraphReport = {
  graphId: number;
  name: string;
  sha: string;
  state: 'running' | 'done';
  result: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  jobs: ReportJob[];
  /** Links to Tower's pages. */
  urls: { graph: string; job: (jobId: number) => string; log: (runId: number) => string };
};
