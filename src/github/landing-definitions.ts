/**
 * What the landing queue reads from `.tower/` through the port: the base
 * branch's `landing:` rules (never the pull request's), and the graphs a
 * staging commit's own definitions select for the `land` event.
 */
import {
  generateGraphs,
  landingFor,
  type Diagnostic,
  type LandingConfig,
} from '../definitions/index.js';
import type { GraphSpec } from '../lib/graph-spec.js';
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
