/**
 * What decides who may do what, read from the base branch's `.tower/`
 * through the port, never the pull request's: the `landing:` rules, and
 * breakpoints' approvers. Also the graphs a staging commit's own
 * definitions select for the `land` event (they run, untrusted by
 * restricted minions).
 */
import {
  generateGraphs,
  landingFor,
  type Diagnostic,
  type LandingConfig,
} from '../definitions/index.js';
import type { EventType, GraphSpec } from '../lib/graph-spec.js';
import type { GitHubPort, RepoRef } from './port.js';

export type { LandingConfig };

const where = (d: Diagnostic) => `${d.file}:${d.line}: ${d.message}`;

/** The landing rules of a base branch at its tip; `problem` says why there are none. */
export async function landingRulesOf(
  github: GitHubPort,
  repo: RepoRef,
  base: string,
): Promise<{ config: LandingConfig | null; tip: string | undefined; problem?: string }> {
  const tip = await github.branchSha(repo, base);
  if (!tip) return { config: null, tip, problem: `the base branch ${base} does not exist` };
  const { config, diagnostics } = landingFor(await github.readTowerFiles(repo, tip), base);
  const error = diagnostics.find((d) => d.severity === 'error');
  if (error) {
    return { config: null, tip, problem: `the .tower/ of ${base} has errors (${where(error)})` };
  }
  if (!config) {
    return {
      config,
      tip,
      problem: `${base} has no landing queue: its .tower/ needs a landing: section listing it`,
    };
  }
  return { config, tip };
}

/** The graphs the staging commit's `.tower/` runs for `land`, or its errors. */
export async function landGraphsAt(
  github: GitHubPort,
  repo: RepoRef,
  sha: string,
  base: string,
): Promise<{ specs: GraphSpec[]; errors: string[] }> {
  const files = await github.readTowerFiles(repo, sha);
  const { specs, diagnostics } = generateGraphs(files, {
    type: 'land',
    branch: base,
    sha,
    changedFiles: null,
  });
  const errors = diagnostics.filter((d) => d.severity === 'error').map(where);
  return { specs: errors.length > 0 ? [] : specs, errors };
}

/** The key of a breakpoint in `breakpointApproversOf`'s map. */
export const breakpointKey = (graph: string, label: string) => `${graph}\u0000${label}`;

/**
 * Who may approve each breakpoint, as the base branch's `.tower/` at its
 * tip defines it for the event (by graph name and job label). A breakpoint
 * the base branch does not define, or whose definitions have errors, has
 * no approver here.
 */
export async function breakpointApproversOf(
  github: GitHubPort,
  repo: RepoRef,
  base: string,
  event: { type: EventType; number?: number; author?: string },
): Promise<Map<string, readonly string[]>> {
  const approvers = new Map<string, readonly string[]>();
  const tip = await github.branchSha(repo, base);
  if (!tip) return approvers;
  const { specs, diagnostics } = generateGraphs(await github.readTowerFiles(repo, tip), {
    ...event,
    branch: base,
    sha: tip,
    changedFiles: null,
  });
  if (diagnostics.some((d) => d.severity === 'error')) return approvers;
  for (const spec of specs) {
    for (const job of spec.jobs) {
      if (job.breakpoint)
        approvers.set(breakpointKey(spec.graph, job.label), job.breakpoint.approvers);
    }
  }
  return approvers;
}
