/**
 * The graph spec: what `.tower/` definitions generate for one event, and
 * what the graph model, the scheduler and the pages consume. It is a
 * versioned, JSON-serialisable format of its own, so it lives in lib/,
 * below both src/definitions/ (which writes it) and src/graph/ (which reads it).
 *
 * Identical input gives an identical spec: jobs are sorted by label, tags
 * and globs are sorted, and nothing depends on time or randomness.
 */

export const GRAPH_SPEC_VERSION = 1 as const;

export const jobResults = [
  'success',
  'warning',
  'failure',
  'exception',
  'cancelled',
  'skipped',
  'timed-out',
] as const;
export type JobResult = (typeof jobResults)[number];

/** Results of a job that actually ran to an end of its own (not skipped or cancelled). */
export const finishedResults: readonly JobResult[] = [
  'success',
  'warning',
  'failure',
  'exception',
  'timed-out',
];
/** The default condition on a dependency: it succeeded, perhaps with warnings. */
export const defaultCondition: readonly JobResult[] = ['success', 'warning'];

export const jobKinds = ['command', 'dummy', 'breakpoint', 'timer', 'notify', 'trigger'] as const;
export type JobKind = (typeof jobKinds)[number];

export const eventTypes = ['push', 'pull_request', 'land', 'cron', 'trigger', 'api'] as const;
export type EventType = (typeof eventTypes)[number];

/** Where in `.tower/` something was defined: for messages and pages. */
export type SourceRef = { file: string; line: number; column: number };

export type DependencySpec = {
  /** Label of the upstream job. */
  job: string;
  /** The upstream results that satisfy this edge, sorted in `jobResults` order. */
  results: JobResult[];
};

/** What a request timeout ends the job with. */
export type RequestTimeoutSpec = { seconds: number; result: JobResult };

export type JobSpec = {
  /** Stable within the graph; fixed chunks are `<label>/<n>` (1-based). */
  label: string;
  kind: JobKind;
  /** Present in the graph, but does not run unless activated (backfill). */
  inactive: boolean;
  /** Set when the path filter excluded the job: it starts done, skipped. */
  filtered: boolean;
  /** Minion tags, all required; sorted. Command jobs only (empty otherwise). */
  requires: string[];
  /** After the branch's max_priority cap. Higher runs first. */
  priority: number;
  /** Automatic retries for infrastructure failures. */
  retries: number;
  /** Seconds, or null when unlimited. */
  maxRuntime: number | null;
  idleTimeout: number | null;
  /** Waiting for a minion (or an approval) longer than this ends the job. */
  requestTimeout: RequestTimeoutSpec | null;
  dependencies: DependencySpec[];
  /** Command jobs: the shell command, after substitution (range chunks keep `${{ chunk }}` and `${{ chunks }}`). */
  command: string | null;
  env: Record<string, string>;
  /** Artifact globs, sorted. */
  artifacts: string[];
  /** For a fixed chunk: its number and the count. For a range: min and max, resolved at dispatch. */
  chunk: { index: number; count: number } | { min: number; max: number } | null;
  /** Kind-specific settings. */
  dummy: { result: JobResult | null } | null;
  breakpoint: { approvers: string[] } | null;
  timer: { delaySeconds: number | null; at: string | null } | null;
  notify: { comment: string | null; webhook: string | null } | null;
  trigger: { cluster: string; graph: string } | null;
  source: SourceRef;
};

export type GraphSpec = {
  version: typeof GRAPH_SPEC_VERSION;
  /** The graph that was built. */
  graph: string;
  /** The parameters used to build it. */
  event: {
    type: EventType;
    branch: string;
    sha: string;
    /** null when the event carried no list (every path-filtered job runs). */
    changedFiles: string[] | null;
  };
  /** The branch defines in effect. */
  defines: Record<string, string | number | boolean>;
  /** Sorted by label. */
  jobs: JobSpec[];
};
