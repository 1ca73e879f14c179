/**
 * Definitions after loading: every file merged, names resolved, templates
 * applied and values converted, ready to build graphs for any event. Only
 * generate.ts reads it; callers treat it as opaque.
 */
import type { EventType, JobKind, JobResult, RequestTimeoutSpec } from '../lib/graph-spec.js';
import type { Where } from './diagnostics.js';
import type { Matcher } from './globs.js';
import type { DefineValue } from './schema.js';
import type { Segment } from './substitute.js';

/** A define that must be truthy (or falsy, negated); or a constant. */
export type DefineCondition = boolean | { define: string; negate: boolean };

export type NeedDef = { job: string; results: JobResult[]; where: Where };

export type JobDef = {
  label: string;
  /** The graph that defines it. */
  graph: string;
  /** The job's key. */
  where: Where;
  kind: JobKind;
  requires: string[];
  priority: number;
  /** Where the priority is written, for the warning when a branch caps it. */
  priorityWhere: Where | undefined;
  retries: number;
  maxRuntime: number | null;
  idleTimeout: number | null;
  requestTimeout: RequestTimeoutSpec | null;
  needs: NeedDef[];
  /** The path filter; null when the job has none. */
  changed: ((files: readonly string[]) => boolean) | null;
  command: Segment[] | null;
  /** Sorted by name. */
  env: [string, Segment[]][];
  artifacts: string[];
  chunks: { count: number } | { min: number; max: number } | null;
  dummy: { result: JobResult | null } | null;
  breakpoint: { approvers: string[] } | null;
  timer: { delaySeconds: number | null; at: string | null } | null;
  notify: { comment: Segment[] | null; webhook: string | null } | null;
  trigger: { cluster: string; graph: string } | null;
};

export type IncludeDef = { graph: string; active: DefineCondition; where: Where };

export type GraphDef = {
  name: string;
  where: Where;
  jobs: JobDef[];
  includes: IncludeDef[];
  /** Labels of jobs that could not be read: needing them is not reported again. */
  brokenLabels: Set<string>;
  /** Part of the graph could not be read at all (its jobs or includes are not a mapping or list). */
  incomplete: boolean;
};

export type SchedulerDef = {
  on: EventType;
  /** Branch globs; null for every branch. */
  branches: Matcher[] | null;
  /** Cron schedulers: the exact branch and the schedule. */
  branch: string | null;
  schedule: string | null;
  graph: string;
  when: DefineCondition;
  where: Where;
};

export type Defines = Map<string, DefineValue>;

export type BranchDefs = {
  defaults: Defines;
  exact: Map<string, Defines>;
  /** In the order they are written, files in path order. */
  globs: { pattern: string; matches: Matcher; defines: Defines }[];
};

export type LandingDef = {
  /** Base branch globs; null for every branch. */
  branches: Matcher[] | null;
  method: 'merge' | 'squash' | 'rebase';
  approvals: number;
  label: string | null;
  batch: { min: number; max: number };
  parallel: number;
};

/** Loaded `.tower/` definitions: pass them to buildGraphs. */
export type Definitions = {
  graphs: Map<string, GraphDef>;
  schedulers: SchedulerDef[];
  branches: BranchDefs;
  /** The `landing:` section; null when there is none. */
  landing: LandingDef | null;
  defineNames: Set<string>;
  /**
   * Some file or piece could not be read: a name it might have defined is
   * not reported as unknown, since that would usually be a false alarm.
   */
  partial: boolean;
};
