/**
 * The landing queue's configuration (the `landing:` section), as the base
 * branch's `.tower/` gives it: who may land how is read from the base
 * branch, never from the pull request.
 */
import type { Diagnostic, SourceFile } from './diagnostics.js';
import { loadDefinitions } from './load.js';
import type { LandingDef } from './model.js';

export type LandingConfig = Omit<LandingDef, 'branches'>;

/**
 * The landing configuration for a base branch: null when the definitions
 * have no `landing:` section, when it does not list the branch, or when the
 * definitions have errors (the diagnostics say which).
 */
export function landingFor(
  files: readonly SourceFile[],
  branch: string,
): { config: LandingConfig | null; diagnostics: Diagnostic[] } {
  const { definitions, diagnostics } = loadDefinitions(files);
  const landing = definitions?.landing;
  if (!landing) return { config: null, diagnostics };
  const { branches, ...config } = landing;
  if (branches && !branches.some((matches) => matches(branch)))
    return { config: null, diagnostics };
  return { config, diagnostics };
}
