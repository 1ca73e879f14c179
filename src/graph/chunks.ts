/**
 * Range chunks (`chunks: { min, max }`, docs/definitions.md "Chunks"): the
 * pure half of materialising them at dispatch. The scheduler counts the idle
 * eligible minions and stores what these functions return.
 *
 * - The count is the idle minions clamped to [min, max]: at least `min`
 *   chunks even with no minion idle (they wait like any pending job), never
 *   more than `max`.
 * - Chunk k of n is the range job as a command of its own: label
 *   `<label>/<k>` (1-based, like fixed chunks), `chunk: { index: k, count: n }`,
 *   `${{ chunk }}` and `${{ chunks }}` substituted in its command and
 *   environment, the same tags, priority, timeouts, retries and artifacts.
 *   Its spec lists the range job's dependencies, and the scheduler records
 *   the same edges, so that minions read the same upstream artifact
 *   manifests. The state machine ignores a chunk's edges (src/scheduler/
 *   reach.ts): a chunk exists only once they were met, and it must not be
 *   reopened on its own when an upstream is retriggered (its range job
 *   materialises chunks again).
 * - The range job ends with the worst result among its chunks, in the order
 *   of `resultSeverity` (worst first), and with that chunk's reason.
 */
import type { JobResult, JobSpec } from '../lib/graph-spec.js';
import { substitute } from '../lib/substitution.js';

export type ChunkRange = { min: number; max: number };

/**
 * Results from worst to best, for the result of a range job. Failing results
 * first, as graphResult counts them: `failure` (the code is at fault, the
 * most useful thing to report), `timed-out` (often a hang), `exception` (the
 * infrastructure); then `cancelled`, then `skipped` (a chunk that never ran,
 * say after a request timeout with `on_request_timeout: skipped`: the range
 * did not fully run, which is worse than a warning), `warning`, `success`.
 */
export const resultSeverity: readonly JobResult[] = [
  'failure',
  'timed-out',
  'exception',
  'cancelled',
  'skipped',
  'warning',
  'success',
];

/** The job's chunk range, when it is a range job (a command whose count is chosen at dispatch). */
export function chunkRange(job: Pick<JobSpec, 'kind' | 'chunk'>): ChunkRange | null {
  return job.kind === 'command' && job.chunk !== null && 'min' in job.chunk ? job.chunk : null;
}

/** How many chunks to materialise for this many idle eligible minions. */
export function chunkCount(range: ChunkRange, idleMinions: number): number {
  return Math.min(range.max, Math.max(range.min, idleMinions));
}

/** The chunk jobs of a range job, `<label>/1` … `<label>/<count>`. */
export function chunkJobs(range: JobSpec, count: number): JobSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const chunk = { index: i + 1, count };
    const value = (name: string) =>
      name === 'chunk' ? String(chunk.index) : name === 'chunks' ? String(count) : undefined;
    return {
      ...range,
      label: `${range.label}/${chunk.index}`,
      dependencies: range.dependencies.map((dep) => ({ ...dep, results: [...dep.results] })),
      requires: [...range.requires],
      command: range.command === null ? null : substitute(range.command, value),
      env: Object.fromEntries(
        Object.entries(range.env).map(([name, text]) => [name, substitute(text, value)]),
      ),
      artifacts: [...range.artifacts],
      chunk,
    };
  });
}

/**
 * The worst of the chunks' outcomes (see `resultSeverity`); among equals the
 * first, so that the reason is the lowest-numbered chunk's. Undefined for none.
 */
export function worstOutcome<T extends { result: JobResult }>(
  outcomes: readonly T[],
): T | undefined {
  let worst: T | undefined;
  for (const outcome of outcomes) {
    if (
      worst === undefined ||
      resultSeverity.indexOf(outcome.result) < resultSeverity.indexOf(worst.result)
    ) {
      worst = outcome;
    }
  }
  return worst;
}
