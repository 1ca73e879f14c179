/**
 * Graph assertion files (`.tower/tests/*.yml`): for an event, which jobs
 * the built graphs hold, and whether they are active or filtered out. They
 * let a repository test its definitions like code.
 */
import type { GraphSpec, JobSpec } from '../lib/graph-spec.js';
import {
  diagnostic,
  formatDiagnostic,
  hasErrors,
  tidyDiagnostics,
  type Diagnostic,
  type SourceFile,
} from './diagnostics.js';
import { buildGraphs, type DefinitionsEvent } from './generate.js';
import { loadAll, type GraphTestPiece } from './load.js';
import type { GraphTest } from './schema.js';

export type GraphTestResult = { file: string; name: string; passed: boolean; failures: string[] };

type Found = { graph: string; job: JobSpec };

/** Jobs by label, and fixed chunks also by the label of the job they split. */
function jobIndex(specs: readonly GraphSpec[]): Map<string, Found[]> {
  const index = new Map<string, Found[]>();
  const add = (label: string, found: Found) => {
    const list = index.get(label);
    if (list) list.push(found);
    else index.set(label, [found]);
  };
  for (const spec of specs) {
    for (const job of spec.jobs) {
      add(job.label, { graph: spec.graph, job });
      const slash = job.label.indexOf('/');
      if (slash > 0) add(job.label.slice(0, slash), { graph: spec.graph, job });
    }
  }
  return index;
}

function failuresOf(test: GraphTest, specs: readonly GraphSpec[]): string[] {
  const failures: string[] = [];
  const index = jobIndex(specs);
  if (test.graphs) {
    const expected = [...new Set(test.graphs)].sort();
    const built = specs.map((s) => s.graph).sort();
    if (expected.join('\0') !== built.join('\0')) {
      failures.push(
        `expected the graphs [${expected.join(', ')}], but the event builds [${built.join(', ')}]`,
      );
    }
  }
  for (const label of test.present ?? []) {
    if (!index.has(label))
      failures.push(`expected "${label}" to be present, but no built graph has it`);
  }
  for (const label of test.absent ?? []) {
    const found = index.get(label);
    if (found)
      failures.push(`expected "${label}" to be absent, but graph "${found[0]!.graph}" has it`);
  }
  const each = (
    labels: string[] | undefined,
    wanted: string,
    fails: (job: JobSpec) => string | undefined,
  ) => {
    for (const label of labels ?? []) {
      const found = index.get(label);
      if (!found) {
        failures.push(`expected "${label}" to be ${wanted}, but no built graph has it`);
        continue;
      }
      const failing = found.find((f) => fails(f.job) !== undefined);
      if (failing)
        failures.push(
          `expected "${label}" to be ${wanted}, but ${fails(failing.job)!} in graph "${failing.graph}"`,
        );
    }
  };
  each(test.active, 'active', (job) => (job.inactive ? `"${job.label}" is inactive` : undefined));
  each(test.inactive, 'inactive', (job) => (job.inactive ? undefined : `"${job.label}" is active`));
  each(test.filtered, 'filtered out', (job) => (job.filtered ? undefined : `"${job.label}" runs`));
  each(test.unfiltered, 'unfiltered', (job) =>
    job.filtered ? `its path filter excludes "${job.label}"` : undefined,
  );
  return failures;
}

function eventOf(test: GraphTest): DefinitionsEvent {
  return {
    type: test.event,
    branch: test.branch,
    sha: test.sha ?? '0'.repeat(40),
    changedFiles: test.changed ?? null,
    ...(test.number === undefined ? {} : { number: test.number }),
    ...(test.author === undefined ? {} : { author: test.author }),
    ...(test.schedule === undefined ? {} : { schedule: test.schedule }),
  };
}

/** Warns about labels no graph defines: an `absent` check on a typo would pass forever. */
function unknownLabels(pieces: readonly GraphTestPiece[], known: Set<string>): Diagnostic[] {
  const warnings: Diagnostic[] = [];
  const kinds = ['present', 'absent', 'active', 'inactive', 'filtered', 'unfiltered'] as const;
  for (const { value: test, locator, path } of pieces) {
    for (const kind of kinds) {
      (test[kind] ?? []).forEach((label, i) => {
        if (!known.has(label.split('/')[0]!)) {
          warnings.push(
            diagnostic(
              'warning',
              locator.value([...path, kind, i]),
              `no graph defines a job "${label}"`,
            ),
          );
        }
      });
    }
  }
  return warnings;
}

/**
 * Runs every test of `.tower/tests/*.yml` against the definitions in the
 * same files. A test fails when the definitions have errors.
 */
export function runGraphTests(files: readonly SourceFile[]): {
  results: GraphTestResult[];
  diagnostics: Diagnostic[];
} {
  const { definitions, tests, diagnostics } = loadAll(files, { tests: true });
  const all = [...diagnostics];
  const broken = hasErrors(diagnostics.filter((d) => !d.file.startsWith('.tower/tests/')));
  if (!broken && !definitions.partial) {
    const known = new Set(
      [...definitions.graphs.values()].flatMap((g) => g.jobs.map((j) => j.label)),
    );
    all.push(...unknownLabels(tests, known));
  }
  const results = tests.map(({ file, value: test }): GraphTestResult => {
    let failures: string[];
    if (broken) {
      failures = ['the definitions have errors'];
    } else {
      const built = buildGraphs(definitions, eventOf(test));
      all.push(...built.diagnostics);
      const firstError = built.diagnostics.find((d) => d.severity === 'error');
      failures = firstError
        ? [`the graphs do not build: ${formatDiagnostic(firstError)}`]
        : failuresOf(test, built.specs);
    }
    return { file, name: test.name, passed: failures.length === 0, failures };
  });
  return { results, diagnostics: tidyDiagnostics(all) };
}
