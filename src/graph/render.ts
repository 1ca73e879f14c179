/**
 * Renderings of a graph spec: canonical JSON (for storage and diffs), Graphviz
 * DOT (for pages and `tower graph --format dot`), and a text listing for a
 * terminal. Pure; they draw malformed specs too, since that is when people
 * look at them.
 */
import { type GraphSpec, type JobKind, type JobResult, type JobSpec } from '../lib/graph-spec.js';
import {
  InvalidGraphError,
  conditionName,
  inactiveJobs,
  problemText,
  topologicalOrder,
  type GraphProblem,
} from './model.js';
import { type GraphState, type JobState, type JobStatus } from './state-machine.js';

// ---------------------------------------------------------------------------
// JSON

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function canonical(value: unknown): Json {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const sorted: { [key: string]: Json } = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      // As JSON.stringify would: an undefined member is left out.
      if (member !== undefined) sorted[key] = canonical(member);
    }
    return sorted;
  }
  return value as Json;
}

/**
 * Canonical JSON: keys sorted at every level, 2-space indent, trailing
 * newline. Arrays keep their order (the spec already sorts what it can), so
 * identical specs give identical bytes however their objects were built.
 */
export function renderJson(spec: GraphSpec): string {
  return `${JSON.stringify(canonical(spec), null, 2)}\n`;
}

// ---------------------------------------------------------------------------
// DOT

/** A DOT quoted string; also escapes what labels would otherwise interpret (`\N`, `\l`). */
function quote(text: string): string {
  return `"${text
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\r\n|\r|\n/g, '\\n')}"`;
}

function attributes(list: [string, string][]): string {
  return list.length === 0 ? '' : ` [${list.map(([key, value]) => `${key}=${value}`).join(', ')}]`;
}

const shapes: Record<JobKind, string> = {
  command: 'box',
  dummy: 'ellipse',
  breakpoint: 'octagon',
  timer: 'hexagon',
  notify: 'note',
  trigger: 'cds',
};

const stateColours: Record<Exclude<JobState, 'done' | 'inactive'>, string> = {
  blocked: 'white',
  pending: 'lightyellow',
  running: 'lightskyblue',
};

const resultColours: Record<JobResult, string> = {
  success: 'palegreen',
  warning: 'khaki',
  failure: 'salmon',
  exception: 'plum',
  cancelled: 'lightgrey',
  skipped: 'whitesmoke',
  'timed-out': 'orange',
};

const INACTIVE_COLOUR = 'grey55';

/** Null for an inactive job, which is drawn unfilled. */
function fillColour(status: JobStatus): string | null {
  if (status.state === 'inactive') return null;
  return status.state === 'done' ? resultColours[status.result] : stateColours[status.state];
}

function statusText(status: JobStatus): string {
  if (status.state !== 'done') return status.state;
  return `${status.result}${status.reason ? ` (${status.reason})` : ''}`;
}

/**
 * Graphviz DOT: one node per job (its label and kind, shaped by kind), edges
 * from upstream to downstream, labelled when the condition is not the default.
 * Inactive jobs (effectively inactive, or inactive in `state`) are dashed and
 * grey, path-filtered ones dotted; with a state, nodes are filled by state or
 * result and show it. Node ids are the quoted labels.
 */
export function renderDot(spec: GraphSpec, state?: GraphState): string {
  const inactive = state ? null : inactiveJobs(spec);
  const isInactive = (job: JobSpec) =>
    inactive ? inactive.has(job.label) : state?.get(job.label)?.state === 'inactive';
  const { type, branch, sha } = spec.event;
  const lines = [
    `digraph ${quote(spec.graph)} {`,
    `  graph${attributes([
      ['label', quote(`${spec.graph}: ${type} on ${branch} at ${sha.slice(0, 12)}`)],
      ['labelloc', 't'],
      ['rankdir', 'LR'],
      ['fontname', 'Helvetica'],
    ])};`,
    `  node [fontname=Helvetica, fontsize=11];`,
    `  edge [fontname=Helvetica, fontsize=9];`,
  ];
  for (const job of spec.jobs) {
    const status = state?.get(job.label);
    const off = isInactive(job);
    // With a state, a filtered job that was retriggered has run: draw what happened.
    const filtered = status ? status.reason === 'path-filter' : job.filtered;
    const text = [job.label, job.kind];
    if (off) text.push('inactive');
    else if (filtered) text.push('filtered');
    if (status && status.state !== 'inactive') text.push(statusText(status));
    const style: string[] = [];
    const list: [string, string][] = [
      ['label', quote(text.join('\n'))],
      ['shape', shapes[job.kind]],
    ];
    if (off) style.push('dashed');
    else if (filtered) style.push('dotted');
    const fill = status ? fillColour(status) : null;
    if (fill) {
      style.push('filled');
      list.push(['fillcolor', fill]);
    }
    if (style.length > 0) list.push(['style', quote(style.join(','))]);
    if (off) list.push(['color', INACTIVE_COLOUR], ['fontcolor', INACTIVE_COLOUR]);
    lines.push(`  ${quote(job.label)}${attributes(list)};`);
  }
  for (const job of spec.jobs) {
    const off = isInactive(job);
    for (const dep of job.dependencies) {
      const condition = conditionName(dep.results);
      const list: [string, string][] = [];
      if (condition !== null) list.push(['label', quote(condition)]);
      if (off) list.push(['style', 'dashed'], ['color', INACTIVE_COLOUR]);
      lines.push(`  ${quote(dep.job)} -> ${quote(job.label)}${attributes(list)};`);
    }
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// Text

function chunkText(chunk: JobSpec['chunk']): string | null {
  if (!chunk) return null;
  return 'index' in chunk
    ? `chunk ${chunk.index} of ${chunk.count}`
    : `chunks ${chunk.min}–${chunk.max}`;
}

function orderOrProblems(spec: GraphSpec): { labels: string[]; problems: readonly GraphProblem[] } {
  try {
    return { labels: topologicalOrder(spec), problems: [] };
  } catch (error) {
    if (!(error instanceof InvalidGraphError)) throw error;
    return { labels: spec.jobs.map((job) => job.label), problems: error.problems };
  }
}

/**
 * A listing for a terminal, one job a line in topological order: label, kind,
 * required tags, chunk, dependencies with their conditions, and `(inactive)`
 * or `(filtered)`. A spec that has no order (a cycle, an unknown dependency)
 * is listed in spec order under its problems.
 */
export function renderText(spec: GraphSpec): string {
  const { labels, problems } = orderOrProblems(spec);
  const byLabel = new Map(spec.jobs.map((job) => [job.label, job]));
  const inactive = inactiveJobs(spec);
  const { type, branch, sha } = spec.event;
  const count = `${spec.jobs.length} job${spec.jobs.length === 1 ? '' : 's'}`;
  const lines = [`${spec.graph}: ${type} on ${branch} at ${sha.slice(0, 12)}, ${count}`];
  for (const problem of problems) {
    lines.push(`  problem: ${problemText(problem)}`);
  }
  const width = Math.max(0, ...labels.map((label) => label.length));
  const kindWidth = Math.max(0, ...spec.jobs.map((job) => job.kind.length));
  for (const label of labels) {
    const job = byLabel.get(label)!;
    const parts = [label.padEnd(width), job.kind.padEnd(kindWidth)];
    if (job.requires.length > 0) parts.push(`requires ${job.requires.join(', ')}`);
    const chunk = chunkText(job.chunk);
    if (chunk) parts.push(chunk);
    if (job.dummy?.result) parts.push(`forces ${job.dummy.result}`);
    if (job.dependencies.length > 0) {
      const needs = job.dependencies.map((dep) => {
        const condition = conditionName(dep.results);
        return condition === null ? dep.job : `${dep.job} (${condition})`;
      });
      parts.push(`needs ${needs.join(', ')}`);
    }
    if (inactive.has(label)) parts.push('(inactive)');
    else if (job.filtered) parts.push('(filtered)');
    lines.push(`  ${parts.join('  ').trimEnd()}`);
  }
  return `${lines.join('\n')}\n`;
}
