/**
 * Generating and validating graphs from `.tower/` definitions: templates ×
 * 50 platforms × fixed chunks, split across included graphs, at three
 * sizes so that the growth is visible.
 */
import {
  buildGraphs,
  generateGraphs,
  loadDefinitions,
  type SourceFile,
} from '../src/definitions/index.js';
import { checkGraph } from '../src/graph/model.js';
import { medianMs } from './stats.js';

const PLATFORMS = 50;

/** `.tower/` files whose per-checkin graph has 50 × (chunks + 3) jobs. */
export function syntheticDefinitions(chunks: number): SourceFile[] {
  const platforms = Array.from({ length: PLATFORMS }, (_, i) => `p${String(i).padStart(2, '0')}`);
  const half = PLATFORMS / 2;
  const graphFor = (list: string[]) =>
    list
      .map(
        (p) => `      build-${p}: { use: build, requires: [${p}, linux] }
      test-${p}: { use: test, requires: [${p}], needs: [build-${p}], changed: ["src/**"] }
      lint-${p}: { use: lint, requires: [${p}] }
      done-${p}: { kind: dummy, needs: { test-${p}: finished, lint-${p}: finished } }`,
      )
      .join('\n');
  const main = `version: 1
branches:
  default: { extras: false, max_priority: 50 }
  main: { extras: true }
schedulers:
  - { on: push, branches: [main], graph: per-checkin }
templates:
  build: { command: make build, max_runtime: 30m, artifacts: [dist/**], priority: 60 }
  test: { command: "make test CHUNK=\${{ chunk }}/\${{ chunks }}", chunks: ${chunks}, retries: 2, idle_timeout: 5m }
  lint: { command: make lint, requires: [linux] }
graphs:
  per-checkin:
    include:
      - first-half
      - second-half
      - { graph: extras, active: extras }
  extras:
    jobs:
      extra-report: { kind: notify, needs: { done-p00: any }, comment: "built \${{ sha }}" }
`;
  return [
    { path: '.tower/tower.yml', content: main },
    {
      path: '.tower/first-half.yml',
      content: `version: 1\ngraphs:\n  first-half:\n    jobs:\n${graphFor(platforms.slice(0, half))}\n`,
    },
    {
      path: '.tower/second-half.yml',
      content: `version: 1\ngraphs:\n  second-half:\n    jobs:\n${graphFor(platforms.slice(half))}\n`,
    },
  ];
}

const event = {
  type: 'push' as const,
  branch: 'main',
  sha: 'a'.repeat(40),
  changedFiles: ['src/index.ts'],
};

export function benchGraphGeneration(rounds = Number(process.env.BENCH_ROUNDS ?? 5)): string {
  const lines = [
    `Graph generation and validation (templates × ${PLATFORMS} platforms × chunks, with includes), median of ${rounds} rounds.`,
    'Load: parse and validate the YAML (the same files at every size: chunks expand in build).',
    'Build: schedulers, defines, includes, templates, chunks, path filters, substitution, checks; then checkGraph.',
    '',
    '| jobs | total (ms) | load (ms) | build + check (ms) | build µs per job |',
    '| ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const chunks of [17, 197, 997]) {
    const files = syntheticDefinitions(chunks);
    let jobs = 0;
    const total = medianMs(rounds, () => {
      const { specs, diagnostics } = generateGraphs(files, event);
      const spec = specs[0];
      if (!spec || diagnostics.some((d) => d.severity === 'error')) {
        throw new Error(
          `the synthetic definitions do not generate: ${JSON.stringify(diagnostics.slice(0, 3))}`,
        );
      }
      const problems = checkGraph(spec);
      if (problems.length > 0)
        throw new Error(`the generated graph is not well formed: ${problems[0]?.message}`);
      jobs = spec.jobs.length;
    });
    const load = medianMs(rounds, () => {
      loadDefinitions(files);
    });
    const { definitions } = loadDefinitions(files);
    const build = medianMs(rounds, () => {
      const { specs } = buildGraphs(definitions!, event);
      checkGraph(specs[0]!);
    });
    lines.push(
      `| ${jobs} | ${total.toFixed(0)} | ${load.toFixed(0)} | ${build.toFixed(0)} | ${((build * 1000) / jobs).toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}
