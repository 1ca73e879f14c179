/**
 * `.tower/` definitions → graph specs: generation, determinism, and the
 * checks that need more than one broken file to show (see
 * definitions-corpus.test.ts for the corpus of mistakes).
 */
import { describe, expect, it } from 'vitest';
import {
  buildGraph,
  buildGraphs,
  checkDefinitions,
  cronSchedules,
  definesFor,
  definitionsJsonSchema,
  formatDiagnostic,
  generateGraphs,
  landingFor,
  loadDefinitions,
  definitionLimitErrors,
  MAX_DEFINITION_FILE_BYTES,
  MAX_DEFINITION_FILES,
  MAX_DEFINITIONS_BYTES,
  MAX_GRAPH_JOBS,
  runGraphTests,
  selectGraphs,
  substitutionNames,
  type Definitions,
  type DefinitionsEvent,
  type SourceFile,
} from '../src/definitions/index.js';
import { cronProblem } from '../src/definitions/cron.js';
import { closest, editDistance } from '../src/definitions/did-you-mean.js';
import { parseDuration } from '../src/definitions/durations.js';
import { compilePathFilter } from '../src/definitions/globs.js';
import type { GraphSpec, JobSpec } from '../src/lib/graph-spec.js';
import { readCase } from './definitions-fixtures.js';

const sha = 'c0ffee'.padEnd(40, '0');
const push = (branch: string, extra: Partial<DefinitionsEvent> = {}): DefinitionsEvent => ({
  type: 'push',
  branch,
  sha,
  ...extra,
});

/** One `.tower/ci.yml`. */
const one = (content: string): SourceFile[] => [{ path: '.tower/ci.yml', content }];

function generate(files: SourceFile[], event: DefinitionsEvent): GraphSpec[] {
  const { specs, diagnostics } = generateGraphs(files, event);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  expect(errors.map(formatDiagnostic)).toEqual([]);
  return specs;
}

function load(files: SourceFile[]): Definitions {
  const { definitions, diagnostics } = loadDefinitions(files);
  expect(diagnostics.map(formatDiagnostic)).toEqual([]);
  return definitions!;
}

function job(spec: GraphSpec | undefined, label: string): JobSpec {
  const found = spec?.jobs.find((j) => j.label === label);
  if (!found) throw new Error(`no job ${label} in ${spec?.graph}`);
  return found;
}

const labels = (spec: GraphSpec | undefined) => spec?.jobs.map((j) => j.label) ?? [];

const example = () => readCase('valid', 'example');
const split = () => readCase('valid', 'split-files');

describe('the example of the brief', () => {
  it('builds per-checkin for a push to main, with every field of a job', () => {
    const [spec, ...more] = generate(example(), push('main', { changedFiles: ['src/a.ts'] }));
    expect(more).toEqual([]);
    expect(spec).toMatchObject({
      version: 1,
      graph: 'per-checkin',
      event: { type: 'push', branch: 'main', sha, changedFiles: ['src/a.ts'] },
      defines: { max_priority: 50, nightly: true, pgo: false },
    });
    expect(labels(spec)).toEqual([
      'build',
      'lint',
      'pgo-build',
      'report-failure',
      'test',
      'tests-done',
    ]);
    expect(job(spec, 'test')).toEqual({
      label: 'test',
      kind: 'command',
      inactive: false,
      filtered: false,
      requires: ['linux', 'node'],
      priority: 0,
      retries: 2,
      maxRuntime: 1200,
      idleTimeout: 300,
      requestTimeout: null,
      dependencies: [{ job: 'build', results: ['success', 'warning'] }],
      command: 'npm test -- --shard ${{ chunk }}/${{ chunks }}',
      env: {},
      artifacts: ['coverage/**'],
      chunk: { min: 1, max: 8 },
      dummy: null,
      breakpoint: null,
      timer: null,
      notify: null,
      trigger: null,
      source: { file: '.tower/ci.yml', line: 26, column: 7 },
    } satisfies JobSpec);
    expect(job(spec, 'lint').env).toEqual({ CI: 'true' });
    expect(job(spec, 'tests-done')).toMatchObject({
      kind: 'dummy',
      requires: [],
      dummy: { result: null },
      dependencies: [
        { job: 'lint', results: ['success', 'warning', 'failure', 'exception', 'timed-out'] },
        { job: 'test', results: ['success', 'warning', 'failure', 'exception', 'timed-out'] },
      ],
    });
    expect(job(spec, 'report-failure')).toMatchObject({
      kind: 'notify',
      notify: { comment: `tests failed on ${sha}`, webhook: null },
      dependencies: [{ job: 'test', results: ['failure'] }],
    });
    // pgo is included but inactive on main, and its priority is capped at main's max_priority.
    expect(job(spec, 'pgo-build')).toMatchObject({
      inactive: true,
      priority: 50,
      requires: ['big', 'linux'],
    });
  });

  it('warns where a priority is capped, once', () => {
    const { diagnostics } = generateGraphs(example(), push('main'));
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      '.tower/ci.yml:35:63: warning: priority 80 is capped at 50, the max_priority of branch "main"',
    ]);
    expect(diagnostics[0]?.path).toBe('graphs.pgo.jobs.pgo-build.priority');
  });

  it('activates pgo on release branches, whose max_priority is higher', () => {
    const [spec] = generate(example(), push('release/2.0'));
    expect(job(spec, 'pgo-build')).toMatchObject({ inactive: false, priority: 80 });
    expect(spec?.defines).toEqual({ max_priority: 100, nightly: false, pgo: true });
    expect(generateGraphs(example(), push('release/2.0')).diagnostics).toEqual([]);
  });

  it('builds nothing for a push to another branch, and per-checkin for pull requests into any', () => {
    expect(generate(example(), push('feature/x'))).toEqual([]);
    const [spec] = generate(example(), {
      type: 'pull_request',
      branch: 'feature/x',
      sha,
      number: 7,
    });
    expect(spec?.graph).toBe('per-checkin');
    expect(
      generate(example(), { type: 'land', branch: 'develop', sha }).map((s) => s.graph),
    ).toEqual(['per-checkin']);
  });

  it('builds the nightly graph from cron on main only, where the nightly define holds', () => {
    const [nightly] = generate(example(), { type: 'cron', branch: 'main', sha });
    expect(nightly?.graph).toBe('nightly');
    expect(labels(nightly)).toEqual([
      'build',
      'heavy',
      'lint',
      'pgo-build',
      'qa-signoff',
      'report-failure',
      'test',
      'tests-done',
      'wait',
    ]);
    expect(job(nightly, 'qa-signoff')).toMatchObject({
      kind: 'breakpoint',
      breakpoint: { approvers: ['alice', 'team:qa'] },
      requestTimeout: { seconds: 86_400, result: 'skipped' },
    });
    expect(job(nightly, 'heavy')).toMatchObject({
      kind: 'trigger',
      trigger: { cluster: 'big-farm', graph: 'full-matrix' },
      dependencies: [{ job: 'qa-signoff', results: ['success', 'warning'] }],
    });
    expect(job(nightly, 'wait').timer).toEqual({ delaySeconds: 600, at: null });
    expect(generate(example(), { type: 'cron', branch: 'release/1', sha })).toEqual([]);
    expect(
      generate(example(), { type: 'cron', branch: 'main', sha, schedule: '0 3 * * *' }),
    ).toHaveLength(1);
    expect(generate(example(), { type: 'cron', branch: 'main', sha, schedule: '@hourly' })).toEqual(
      [],
    );
  });
});

describe('branch defines', () => {
  it('apply default, then the exact name, then matching globs in order, later winning, across files', () => {
    const definitions = load(split());
    const defines = (branch: string) => definesFor(definitions, branch);
    expect(defines('feature/x')).toEqual({
      deploy: false,
      coverage: false,
      channel: 'none',
      max_priority: 10,
    });
    expect(defines('main')).toEqual({
      deploy: false,
      coverage: true,
      channel: 'nightly',
      max_priority: 10,
    });
    expect(defines('release/2.x')).toEqual({
      deploy: true,
      coverage: false,
      channel: 'stable',
      max_priority: 100,
    });
    // release1.yml comes after release.yml, so its glob applies later and wins.
    expect(defines('release/1.x')).toMatchObject({ deploy: false, channel: 'stable' });
  });

  it('let a glob override an exact name, as the order says', () => {
    const definitions = load(
      one(`version: 1
branches:
  default: { a: 0, b: 0, c: 0 }
  "fix/*": { b: 2, c: 2 }
  fix/one: { a: 1, b: 1 }
  "fix/o*": { c: 3 }
`),
    );
    expect(definesFor(definitions, 'fix/one')).toEqual({ a: 1, b: 2, c: 3 });
  });

  it('reach commands, environment and comments through ${{ defines.name }}', () => {
    const [spec] = generate(split(), push('main'));
    expect(job(spec, 'build').env).toEqual({ CHANNEL: 'nightly', NODE_ENV: 'test' });
    const [feature] = generate(split(), { type: 'pull_request', branch: 'feature/x', sha });
    expect(job(feature, 'build').env.CHANNEL).toBe('none');
  });
});

describe('schedulers', () => {
  it('select graphs by event, branch globs and when, each graph once in scheduler order', () => {
    const definitions = load(split());
    expect(selectGraphs(definitions, push('main'))).toEqual(['ci']);
    expect(selectGraphs(definitions, push('release/2.x'))).toEqual(['ci', 'release']);
    expect(selectGraphs(definitions, push('release/1.x'))).toEqual(['ci']);
    expect(selectGraphs(definitions, push('feature/x'))).toEqual([]);
    expect(selectGraphs(definitions, { type: 'cron', branch: 'main', sha })).toEqual([
      'nightly',
      'weekly',
    ]);
    expect(
      selectGraphs(definitions, { type: 'cron', branch: 'main', sha, schedule: '@daily' }),
    ).toEqual(['nightly']);
    expect(selectGraphs(definitions, { type: 'api', branch: 'main', sha })).toEqual([]);
  });

  it('list the cron schedules with their branches, each once', () => {
    const definitions = load(
      one(`version: 1
schedulers:
  - { on: cron, schedule: "@daily", branch: main, graph: a }
  - { on: cron, schedule: "@daily", branch: main, graph: b }
  - { on: cron, schedule: "@daily", branch: next, graph: a }
  - { on: push, graph: a }
graphs: { a: {}, b: {} }
`),
    );
    expect(cronSchedules(definitions)).toEqual([
      { schedule: '@daily', branch: 'main' },
      { schedule: '@daily', branch: 'next' },
    ]);
  });

  it('negate a define with "!name"', () => {
    const files = one(`version: 1
branches:
  default: { frozen: false }
  stable: { frozen: true }
schedulers:
  - { on: push, graph: ci, when: "!frozen" }
  - { on: push, graph: ci }
  - { on: push, graph: frozen, when: frozen }
graphs:
  ci: {}
  frozen: {}
`);
    expect(generate(files, push('main')).map((s) => s.graph)).toEqual(['ci']);
    expect(generate(files, push('stable')).map((s) => s.graph)).toEqual(['ci', 'frozen']);
  });
});

describe('templates', () => {
  it("apply the template's keys under the job's own, merging env key by key", () => {
    const [spec] = generate(split(), push('main'));
    expect(job(spec, 'lint')).toMatchObject({
      requires: ['linux', 'node'],
      command: 'npm run lint',
      maxRuntime: 1800,
      idleTimeout: 600,
      retries: 1,
      env: { CHANNEL: 'nightly', NODE_ENV: 'lint' },
    });
    const files = one(`version: 1
templates:
  gate: { kind: dummy, result: success, needs: [build] }
  linux: { requires: [linux, docker], command: make, retries: 2, priority: 3 }
graphs:
  ci:
    jobs:
      build: { use: linux, requires: [mac], retries: 0 }
      ready: { use: gate }
      forced: { use: gate, result: failure, needs: { build: any } }
`);
    const [ci] = [buildGraph(load(files), 'ci', push('main')).spec];
    expect(job(ci, 'build')).toMatchObject({
      requires: ['mac'],
      command: 'make',
      retries: 0,
      priority: 3,
    });
    expect(job(ci, 'ready')).toMatchObject({ kind: 'dummy', dummy: { result: 'success' } });
    expect(job(ci, 'forced')).toMatchObject({
      dummy: { result: 'failure' },
      dependencies: [
        {
          job: 'build',
          results: [
            ...['success', 'warning', 'failure', 'exception'],
            'cancelled',
            'skipped',
            'timed-out',
          ],
        },
      ],
    });
  });

  it('report a template key that does not fit the kind once per template, and template string mistakes once', () => {
    const diagnostics = checkDefinitions(
      one(`version: 1
templates:
  tpl: { requires: [linux], command: "make \${{ nope }}" }
graphs:
  ci:
    jobs:
      a: { use: tpl }
      b: { use: tpl }
`),
    );
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringMatching(/^\.tower\/ci\.yml:3:44: error: unknown name "nope"/),
    ]);
  });

  it('report ${{ chunk }} from a template in a job without chunks, naming the template', () => {
    const diagnostics = checkDefinitions(
      one(`version: 1
templates:
  shard: { requires: [linux], command: "make SHARD=\${{ chunks }}" }
graphs:
  ci:
    jobs:
      split: { use: shard, chunks: 2 }
      whole: { use: shard }
`),
    );
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      '.tower/ci.yml:3:52: error: ${{ chunks }} needs chunks, and job "whole" has none (from template "shard")',
    ]);
  });
});

describe('includes', () => {
  const files = one(`version: 1
branches:
  default: { extra: false }
  main: { extra: true }
schedulers:
  - { on: push, graph: top }
graphs:
  top:
    jobs:
      build: { requires: [linux], command: make }
    include:
      - shared
      - { graph: optional, active: extra }
      - { graph: off, active: false }
  shared:
    jobs:
      lint: { requires: [linux], command: make lint, needs: [build] }
    include: [common]
  optional:
    include: [common, deeper]
    jobs:
      docs: { requires: [linux], command: make docs }
  deeper:
    jobs:
      deep: { kind: dummy }
  off:
    include: [deeper2]
  deeper2:
    jobs:
      deepest: { kind: dummy }
  common:
    jobs:
      fmt: { requires: [linux], command: make fmt }
`);

  it('add the included jobs once, inactive unless the include is active on every step of some path', () => {
    const [spec] = generate(files, push('feature'));
    expect(labels(spec)).toEqual(['build', 'deep', 'deepest', 'docs', 'fmt', 'lint']);
    const inactive = spec?.jobs.filter((j) => j.inactive).map((j) => j.label);
    // common is reached through shared (active) and optional (inactive): active wins.
    expect(inactive).toEqual(['deep', 'deepest', 'docs']);
    const [main] = generate(files, push('main'));
    expect(main?.jobs.filter((j) => j.inactive).map((j) => j.label)).toEqual(['deepest']);
  });

  it('let included jobs need jobs of the graph that includes them', () => {
    const [spec] = generate(files, push('main'));
    expect(job(spec, 'lint').dependencies).toEqual([
      { job: 'build', results: ['success', 'warning'] },
    ]);
    expect(checkDefinitions(files)).toEqual([]);
  });

  it('check a graph nothing includes or schedules on its own', () => {
    const diagnostics = checkDefinitions(
      one(`version: 1
graphs:
  alone:
    jobs:
      x: { kind: dummy, needs: [y] }
`),
    );
    expect(diagnostics.map((d) => d.message)).toEqual(['unknown job "y" in graph "alone"']);
  });
});

describe('chunks', () => {
  const files = one(`version: 1
schedulers: [{ on: push, graph: ci }]
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make }
      test:
        requires: [linux]
        command: "make test SHARD=\${{ chunk }}/\${{ chunks }}"
        env: { SHARD: "\${{ chunk }}" }
        chunks: 3
        needs: [build]
      flaky:
        requires: [linux]
        command: "run \${{chunk}} of \${{ chunks}}"
        chunks: { min: 2, max: 6 }
      done: { kind: dummy, needs: { test: finished, flaky: any } }
`);

  it('expand fixed chunks into label/1..N, each depending as the job does, and dependents need them all', () => {
    const [spec] = generate(files, push('main'));
    expect(labels(spec)).toEqual(['build', 'done', 'flaky', 'test/1', 'test/2', 'test/3']);
    expect(job(spec, 'test/2')).toMatchObject({
      command: 'make test SHARD=2/3',
      env: { SHARD: '2' },
      chunk: { index: 2, count: 3 },
      dependencies: [{ job: 'build', results: ['success', 'warning'] }],
    });
    expect(job(spec, 'done').dependencies.map((d) => d.job)).toEqual([
      'flaky',
      'test/1',
      'test/2',
      'test/3',
    ]);
  });

  it('keep a range as one job whose command keeps ${{ chunk }} and ${{ chunks }} for dispatch', () => {
    const [spec] = generate(files, push('main'));
    expect(job(spec, 'flaky')).toMatchObject({
      chunk: { min: 2, max: 6 },
      command: 'run ${{ chunk }} of ${{ chunks }}',
    });
  });

  it('refuse a graph beyond the size limit', () => {
    const jobs = Array.from(
      { length: 101 },
      (_, i) => `      j${i}: { requires: [linux], command: make, chunks: 1000 }`,
    );
    const { specs, diagnostics } = generateGraphs(
      one(
        `version: 1\nschedulers: [{ on: push, graph: big }]\ngraphs:\n  big:\n    jobs:\n${jobs.join('\n')}\n`,
      ),
      push('main'),
    );
    expect(specs).toEqual([]);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      `.tower/ci.yml:4:3: error: graph "big" has 101000 jobs (chunks counted, a range at its max), more than the limit of ${MAX_GRAPH_JOBS}`,
    ]);
  });
});

describe('oversized definitions (the attack)', () => {
  const head = 'version: 1\nschedulers: [{ on: push, graph: g }]\n';
  const errorsOf = (files: SourceFile[]) => {
    const { specs, diagnostics } = generateGraphs(files, push('main'));
    expect(specs).toEqual([]);
    return diagnostics.map(formatDiagnostic);
  };
  const filler = (bytes: number) => `# ${'x'.repeat(bytes - 3)}\n`;

  it('too many files: refused from the listing, nothing parsed', () => {
    const files = Array.from({ length: MAX_DEFINITION_FILES + 1 }, (_, i) => ({
      path: `.tower/f${String(i).padStart(3, '0')}.yml`,
      // Unparseable, to show that nothing was parsed.
      content: ': : :',
    }));
    expect(errorsOf(files)).toEqual([
      `.tower/f000.yml:1:1: error: .tower/ holds 101 YAML files, more than the limit of ${MAX_DEFINITION_FILES}: merge them`,
    ]);
    // Files outside .tower/ or not YAML do not count.
    expect(
      errorsOf([...files.slice(0, 100), { path: 'README.md', content: '' }]).some((d) =>
        d.includes('limit'),
      ),
    ).toBe(false);
  });

  it('too large in total, or one file too large: refused, positioned at the files', () => {
    const quarter = filler(250 * 1024);
    const files = ['a', 'b', 'c', 'd', 'e'].map((name) => ({
      path: `.tower/${name}.yml`,
      content: quarter,
    }));
    expect(errorsOf(files)).toEqual([
      `.tower/a.yml:1:1: error: .tower/ holds 1250 KiB of YAML, more than the limit of ${MAX_DEFINITIONS_BYTES / 1024} KiB: use templates and chunks`,
    ]);
    expect(errorsOf([{ path: '.tower/ci.yml', content: head + filler(300 * 1024) }])).toEqual([
      `.tower/ci.yml:1:1: error: this file is 301 KiB, more than the limit of ${MAX_DEFINITION_FILE_BYTES / 1024} KiB for one file: use templates and chunks, or split it`,
    ]);
    // Multi-byte text counts in bytes, as the tree lists it.
    expect(errorsOf([{ path: '.tower/ci.yml', content: '€'.repeat(100_000) }])).toEqual([
      expect.stringContaining('this file is 293 KiB'),
    ]);
  });

  it('listed only (as the GitHub port returns them over the limits): the sizes decide', () => {
    expect(
      definitionLimitErrors([
        { path: '.tower/ci.yml', size: 10 },
        { path: '.tower/huge.yml', size: MAX_DEFINITION_FILE_BYTES + 1 },
      ]),
    ).toEqual([expect.objectContaining({ file: '.tower/huge.yml', line: 1, column: 1 })]);
    expect(errorsOf([{ path: '.tower/ci.yml', content: '', size: 2 * 1024 * 1024 }])).toHaveLength(
      2,
    );
    expect(definitionLimitErrors([])).toEqual([]);
  });

  it('an alias bomb: too many aliases is an error at the first one past the limit', () => {
    const aliases = Array.from(
      { length: 1000 },
      (_, i) => `      j${i}: { requires: [linux], command: make, env: { A: *a } }`,
    );
    const content = `${head}x: &a [1]\ngraphs:\n  g:\n    jobs:\n${aliases.join('\n')}\n`;
    expect(errorsOf(one(content))).toEqual([
      `.tower/ci.yml:${7 + 100}:59: error: more than 100 aliases (*name) in one file: write the values out, or use templates`,
    ]);
    // The classic bomb: few aliases, each doubling the last.
    const laughs = [`a0: &a0 [lol, lol]`];
    for (let i = 1; i < 30; i++) laughs.push(`a${i}: &a${i} [*a${i - 1}, *a${i - 1}]`);
    expect(errorsOf(one(`${head}${laughs.join('\n')}\n`))).toEqual([
      expect.stringMatching(/^\.tower\/ci\.yml:1:1: error: .*alias/i),
    ]);
  });

  it('a chunk count of 10^9 is refused by the schema, before anything is built', () => {
    expect(
      errorsOf(
        one(
          `${head}graphs:\n  g:\n    jobs:\n      j: { requires: [linux], command: make, chunks: 1000000000 }\n`,
        ),
      ),
    ).toEqual([expect.stringMatching(/^\.tower\/ci\.yml:6:54: error: must be at most 1000$/)]);
  });

  it('range chunks count at their max: a graph that could grow past the limit at dispatch is refused', () => {
    const jobs = Array.from({ length: 200 }, (_, i) => `      j${i}: { use: wide }`);
    const content = `${head}templates:\n  wide: { requires: [linux], command: make, chunks: { min: 1, max: 1000 } }\ngraphs:\n  g:\n    jobs:\n${jobs.join('\n')}\n`;
    expect(errorsOf(one(content))).toEqual([
      `.tower/ci.yml:6:3: error: graph "g" has 200200 jobs (chunks counted, a range at its max), more than the limit of ${MAX_GRAPH_JOBS}`,
    ]);
  });

  it('fixed chunks past the limit are counted, not built (a 10^8-label graph answers at once)', () => {
    const jobs = Array.from({ length: 10_000 }, (_, i) => `      j${i}: { use: t }`);
    const content = `${head}templates:\n  t: { requires: [linux], command: make, chunks: 1000 }\ngraphs:\n  g:\n    jobs:\n${jobs.join('\n')}\n`;
    expect(content.length).toBeLessThan(MAX_DEFINITION_FILE_BYTES);
    expect(errorsOf(one(content))).toEqual([
      `.tower/ci.yml:6:3: error: graph "g" has 10000000 jobs (chunks counted, a range at its max), more than the limit of ${MAX_GRAPH_JOBS}`,
    ]);
  });

  it('thousands of unknown names get their errors, and suggestions for the first ones only', () => {
    const jobs = Array.from(
      { length: 2000 },
      (_, i) => `      job${i}: { requires: [linux], command: make, needs: [jbo${i}] }`,
    );
    const errors = errorsOf(one(`${head}graphs:\n  g:\n    jobs:\n${jobs.join('\n')}\n`));
    expect(errors).toHaveLength(2000);
    expect(errors.filter((e) => e.includes('did you mean'))).toHaveLength(50);
  });
});

describe('path filters', () => {
  const files = one(`version: 1
schedulers: [{ on: pull_request, graph: ci }]
graphs:
  ci:
    jobs:
      always: { requires: [linux], command: make }
      code: { requires: [linux], command: make test, changed: ["src/**", "!src/**/*.md"] }
      not-docs: { requires: [linux], command: make lint, changed: ["!docs/**"] }
      dotfiles: { kind: dummy, changed: [".github/**"] }
`);
  const filtered = (changedFiles: string[] | null | undefined) => {
    const [spec] = generate(files, { type: 'pull_request', branch: 'main', sha, changedFiles });
    return spec?.jobs.filter((j) => j.filtered).map((j) => j.label);
  };

  it('run every job when the event carries no list of changed files', () => {
    expect(filtered(undefined)).toEqual([]);
    expect(filtered(null)).toEqual([]);
  });

  it('filter out a job none of whose patterns match a changed file; ! excludes', () => {
    expect(filtered(['src/a.ts'])).toEqual(['dotfiles']);
    expect(filtered(['src/notes/readme.md', 'docs/x.md'])).toEqual(['code', 'dotfiles']);
    expect(filtered(['docs/x.md'])).toEqual(['code', 'dotfiles', 'not-docs']);
    expect(filtered(['.github/workflows/ci.yml'])).toEqual(['code']);
    expect(filtered([])).toEqual(['code', 'dotfiles', 'not-docs']);
  });

  it('sort and deduplicate the changed files in the spec', () => {
    const [spec] = generate(files, {
      type: 'pull_request',
      branch: 'main',
      sha,
      changedFiles: ['b', 'a', 'b'],
    });
    expect(spec?.event.changedFiles).toEqual(['a', 'b']);
  });

  it('match a list of changed files with several patterns', () => {
    const matches = compilePathFilter(['src/**', 'test/**']);
    expect(matches(['README.md', 'test/x.ts'])).toBe(true);
    expect(matches(['README.md'])).toBe(false);
  });
});

describe('substitution', () => {
  it('substitutes the fixed names, with empty text for what the event lacks', () => {
    const files = readCase('valid', 'every-kind.yml');
    const event: DefinitionsEvent = {
      type: 'api',
      branch: 'feature/x',
      sha,
      number: 42,
      author: 'octocat',
    };
    const [spec] = generate(files, event);
    expect(job(spec, 'compile')).toMatchObject({
      command: `make -j8 \\\n  REVISION=${sha} PR=42 BY=octocat\n`,
      env: { CC: 'clang', TOWER_BRANCH: 'feature/x' },
    });
    expect(job(spec, 'tell').notify).toEqual({ comment: 'Done: api', webhook: null });
    const [bare] = generate(files, { type: 'trigger', branch: 'main', sha });
    expect(job(bare, 'compile').command).toBe(`make -j8 \\\n  REVISION=${sha} PR= BY=\n`);
  });

  it('substitutes an empty string for a define this branch lacks', () => {
    const files = one(`version: 1
branches:
  main: { flavour: mint }
schedulers: [{ on: push, graph: ci }]
graphs:
  ci:
    jobs:
      x: { requires: [linux], command: "echo [\${{ defines.flavour }}]" }
`);
    expect(job(generate(files, push('main'))[0], 'x').command).toBe('echo [mint]');
    expect(job(generate(files, push('other'))[0], 'x').command).toBe('echo []');
  });

  it('lists its names', () => {
    expect(substitutionNames).toContain('defines.<name>');
  });

  it('points at each unknown name inside a string, even in a block scalar, and at the string when escapes hide it', () => {
    const diagnostics = checkDefinitions(
      one(`version: 1
graphs:
  ci:
    jobs:
      a:
        requires: [linux]
        command: |
          echo \${{ sha }}
            \${{ one }} \${{ two }}
      b: { requires: [linux], command: "tab\\t\${{ three }}", env: { X: "\${{ four }}" } }
      c: { requires: [linux], command: "\\u0024{{ five }}" }
`),
    );
    expect(diagnostics.map((d) => `${d.line}:${d.column} ${d.message.split(' in ')[0]}`)).toEqual([
      '9:13 unknown name "one"',
      '9:24 unknown name "two"',
      '10:46 unknown name "three"',
      '10:72 unknown name "four"',
      '11:40 unknown name "five"',
    ]);
  });
});

describe('every job kind', () => {
  it('turns each kind into its spec', () => {
    const [spec] = generate(readCase('valid', 'every-kind.yml'), {
      type: 'api',
      branch: 'main',
      sha,
    });
    expect(job(spec, 'compile')).toMatchObject({
      requires: ['arch=x86_64', 'linux'],
      artifacts: ['logs/*.txt', 'out/**'],
      chunk: { min: 2, max: 16 },
      maxRuntime: 5400,
      idleTimeout: 600,
      requestTimeout: { seconds: 7200, result: 'failure' },
      retries: 3,
      priority: 7,
    });
    expect(job(spec, 'forced').dummy).toEqual({ result: 'warning' });
    expect(job(spec, 'approve')).toMatchObject({
      breakpoint: { approvers: ['bob', 'team:ops'] },
      requestTimeout: { seconds: 86_400, result: 'success' },
    });
    expect(job(spec, 'later').timer).toEqual({ delaySeconds: 90, at: null });
    expect(job(spec, 'hook').notify).toEqual({
      comment: null,
      webhook: 'https://hooks.example.com/tower',
    });
    expect(job(spec, 'remote')).toMatchObject({
      kind: 'trigger',
      trigger: { cluster: 'big-farm', graph: 'full-matrix' },
    });
  });

  it('normalises a timer timestamp to UTC', () => {
    const [nightly] = generate(split(), { type: 'cron', branch: 'main', sha, schedule: '@daily' });
    expect(job(nightly, 'wait-for-quiet').timer).toEqual({
      delaySeconds: null,
      at: '2030-01-01T02:00:00.000Z',
    });
    expect(job(nightly, 'soak').maxRuntime).toBe(21_600);
  });
});

describe('determinism', () => {
  it('gives identical JSON for the same input, whatever the order of the files', () => {
    const files = split();
    const event: DefinitionsEvent = {
      type: 'push',
      branch: 'release/2.x',
      sha,
      changedFiles: ['src/x.ts'],
    };
    const first = JSON.stringify(generate(files, event));
    expect(JSON.stringify(generate(files, event))).toBe(first);
    expect(JSON.stringify(generate([...files].reverse(), event))).toBe(first);
    const shuffled = [files[3]!, files[0]!, ...files.slice(4), files[2]!, files[1]!];
    expect(JSON.stringify(generate(shuffled, event))).toBe(first);
    expect(JSON.stringify(generateGraphs([...files].reverse(), event).diagnostics)).toBe(
      JSON.stringify(generateGraphs(files, event).diagnostics),
    );
  });

  it('sorts jobs, tags, globs and environment keys', () => {
    const [spec] = generate(
      one(`version: 1
schedulers: [{ on: push, graph: ci }]
graphs:
  ci:
    jobs:
      zeta: { requires: [z, a, m, a], command: x, artifacts: [b/**, a/**], env: { Z: "1", A: "2" }, needs: { beta: any, alpha: failure } }
      beta: { kind: dummy }
      alpha: { kind: dummy }
`),
      push('main'),
    );
    expect(labels(spec)).toEqual(['alpha', 'beta', 'zeta']);
    const zeta = job(spec, 'zeta');
    expect(zeta.requires).toEqual(['a', 'm', 'z']);
    expect(zeta.artifacts).toEqual(['a/**', 'b/**']);
    expect(Object.keys(zeta.env)).toEqual(['A', 'Z']);
    expect(zeta.dependencies.map((d) => d.job)).toEqual(['alpha', 'beta']);
  });
});

describe('loading', () => {
  it('ignores files outside .tower/ and other files inside it, and does not read graph tests as definitions', () => {
    const { definitions, diagnostics } = loadDefinitions([
      ...example(),
      { path: 'README.md', content: 'not yaml: [' },
      { path: 'other/ci.yml', content: 'version: 3' },
      { path: '.tower/schema.json', content: '{' },
      { path: '.tower/tests/broken.yml', content: 'version: [' },
    ]);
    expect(diagnostics).toEqual([]);
    expect(definitions).toBeDefined();
  });

  it('returns no definitions when a file has an error, and accepts an empty .tower/', () => {
    expect(loadDefinitions(one('version: 2\n')).definitions).toBeUndefined();
    const empty = loadDefinitions([]);
    expect(empty).toMatchObject({ diagnostics: [] });
    expect(buildGraphs(empty.definitions!, push('main'))).toEqual({ specs: [], diagnostics: [] });
  });

  it('reads .yaml as well as .yml, and YAML anchors', () => {
    const [spec] = [
      buildGraph(load(readCase('valid', 'anchors.yml')), 'anchored', push('main')).spec,
    ];
    expect(job(spec, 'three')).toMatchObject({ command: 'make one', requires: ['linux'] });
    const yaml = loadDefinitions([
      { path: '.tower/ci.yaml', content: 'version: 1\ngraphs:\n  g: {}\n' },
    ]);
    expect([...yaml.definitions!.graphs.keys()]).toEqual(['g']);
  });

  it('reports a branch file that holds more than branches, and branch defines in any file', () => {
    const diagnostics = checkDefinitions([
      { path: '.tower/branches/x.yml', content: 'version: 1\ngraphs: {}\n' },
      { path: '.tower/ci.yml', content: 'version: 1\nbranches:\n  main: { a: 1 }\n' },
    ]);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      '.tower/branches/x.yml:2:1: error: unknown key "graphs"; expected one of branches, version',
    ]);
  });

  it('does not report names that an unreadable file may define', () => {
    const files = [
      { path: '.tower/a.yml', content: 'version: 1\ntemplates: {\n' },
      {
        path: '.tower/b.yml',
        content: `version: 1
schedulers: [{ on: push, graph: elsewhere, when: somewhere }, { on: push, graph: ci }]
graphs:
  ci:
    include: [gone]
    jobs:
      x: { use: lost }
      y: { kind: dummy, needs: [x, z] }
      w: { requires: [linux], command: "\${{ defines.nowhere }}" }
`,
      },
    ];
    const diagnostics = checkDefinitions(files);
    expect(diagnostics.map((d) => d.file)).toEqual(['.tower/a.yml']);
    const generated = generateGraphs(files, push('main'));
    expect(generated.specs).toEqual([]);
    expect(generated.diagnostics).toEqual(diagnostics);
  });

  it('does not report needing a job that is itself broken', () => {
    const diagnostics = checkDefinitions(
      one(`version: 1
templates:
  t: { kind: dummy, resutl: success }
graphs:
  ci:
    jobs:
      broken: { kidn: dummy }
      other: { use: t }
      ok: { kind: dummy, needs: [broken, other] }
  half:
    jobs: 3
  halfway:
    include: [half]
    jobs:
      x: { kind: dummy, needs: [y] }
`),
    );
    expect(diagnostics.map((d) => d.message)).toEqual([
      'unknown key "resutl"; did you mean "result"?',
      'unknown key "kidn"; did you mean "kind"?',
      'expected a mapping, got 3',
    ]);
  });

  it('reports as many mistakes as it finds in one pass, sorted by place', () => {
    const diagnostics = checkDefinitions(
      one(`version: 1
schedulers:
  - { on: push, graph: nope }
graphs:
  ci:
    jobs:
      a: { kind: dummy, needs: [b] }
      b: { kind: dummy, needs: [a] }
      c: { kind: dummy, needs: [zz], extra: 1 }
      d: { requires: linux, command: make }
`),
    );
    expect(diagnostics.map((d) => `${d.line}:${d.column}`)).toEqual([
      '3:24',
      '8:33',
      '9:33',
      '9:38',
      '10:22',
    ]);
  });

  it('suggests nothing when no name is close', () => {
    const diagnostics = checkDefinitions(
      one('version: 1\nschedulers: [{ on: push, graph: zzzzzz }]\ngraphs: { ci: {} }\n'),
    );
    expect(diagnostics.map((d) => d.message)).toEqual(['unknown graph "zzzzzz"']);
  });

  it('reports a mapping key that is not a plain name, and a non-string version', () => {
    expect(checkDefinitions(one('version: 1\n? [a, b]\n: 1\n')).map((d) => d.message)).toEqual([
      'unknown key "[ a, b ]"; expected one of branches, graphs, landing, schedulers, templates, version',
    ]);
    expect(checkDefinitions(one('version: [1]\n')).map((d) => d.message)).toEqual([
      'unsupported version [1]: this Tower reads version 1',
    ]);
  });
});

describe('priorities', () => {
  it('cap every job above a negative max_priority, pointing at the job when it sets none', () => {
    const files = one(`version: 1
branches:
  slow: { max_priority: -1 }
schedulers: [{ on: push, graph: ci }]
graphs:
  ci:
    jobs:
      low: { requires: [linux], command: make, priority: -5 }
      plain: { requires: [linux], command: make }
`);
    const { specs, diagnostics } = generateGraphs(files, push('slow'));
    expect(specs[0]?.jobs.map((j) => [j.label, j.priority])).toEqual([
      ['low', -5],
      ['plain', -1],
    ]);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      '.tower/ci.yml:9:7: warning: priority 0 is capped at -1, the max_priority of branch "slow"',
    ]);
  });
});

describe('buildGraph', () => {
  it('builds a named graph whatever the schedulers say, and reports an unknown name', () => {
    const definitions = load(example());
    expect(
      buildGraph(definitions, 'pgo', { type: 'trigger', branch: 'main', sha }).spec?.graph,
    ).toBe('pgo');
    const { spec, diagnostics } = buildGraph(definitions, 'pgp', {
      type: 'trigger',
      branch: 'main',
      sha,
    });
    expect(spec).toBeUndefined();
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      '.tower:1:1: error: no graph named "pgp"; did you mean "pgo"?',
    ]);
  });

  it('returns no spec when any selected graph has an error, but the errors of each', () => {
    const files = one(`version: 1
schedulers:
  - { on: push, graph: good }
  - { on: push, graph: bad }
graphs:
  good: { jobs: { x: { kind: dummy } } }
  bad: { jobs: { y: { kind: dummy, needs: [x] } } }
`);
    const result = generateGraphs(files, push('main'));
    expect(result.specs).toEqual([]);
    expect(result.diagnostics.map((d) => d.message)).toEqual(['unknown job "x" in graph "bad"']);
  });
});

describe('graph tests', () => {
  const definitions = `version: 1
branches:
  default: { extra: false }
  main: { extra: true }
schedulers:
  - { on: push, graph: ci }
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make }
      test: { requires: [linux], command: make test, chunks: 2, changed: [src/**] }
    include: [{ graph: extra, active: extra }]
  extra:
    jobs:
      docs: { kind: dummy }
`;
  const run = (tests: string) =>
    runGraphTests([
      ...one(definitions),
      { path: '.tower/tests/ci.yml', content: `version: 1\ntests:\n${tests}` },
    ]);

  it('passes when the graphs hold what the tests say', () => {
    const { results, diagnostics } = run(`  - name: main
    event: push
    branch: main
    sha: abc
    number: 1
    author: me
    changed: [src/x.ts]
    graphs: [ci]
    present: [build, test, test/2]
    absent: [test/3]
    active: [docs, test]
    unfiltered: [test/1]
  - name: elsewhere
    event: push
    branch: other
    changed: [README.md]
    inactive: [docs]
    filtered: [test]
  - { name: nothing, event: cron, branch: main, schedule: "@daily", graphs: [] }
`);
    expect(diagnostics).toEqual([]);
    expect(results).toEqual([
      { file: '.tower/tests/ci.yml', name: 'main', passed: true, failures: [] },
      { file: '.tower/tests/ci.yml', name: 'elsewhere', passed: true, failures: [] },
      { file: '.tower/tests/ci.yml', name: 'nothing', passed: true, failures: [] },
    ]);
  });

  it('fails with a reason for each assertion that does not hold, and warns about labels no graph defines', () => {
    const { results, diagnostics } = run(`  - name: wrong
    event: push
    branch: other
    changed: [src/x.ts]
    graphs: [nightly]
    present: [lint]
    absent: [build]
    active: [docs, nope]
    inactive: [build, nope]
    filtered: [test, nope]
    unfiltered: [build, nope]
`);
    expect(results[0]?.passed).toBe(false);
    expect(results[0]?.failures).toEqual([
      'expected the graphs [nightly], but the event builds [ci]',
      'expected "lint" to be present, but no built graph has it',
      'expected "build" to be absent, but graph "ci" has it',
      'expected "docs" to be active, but "docs" is inactive in graph "ci"',
      'expected "nope" to be active, but no built graph has it',
      'expected "build" to be inactive, but "build" is active in graph "ci"',
      'expected "nope" to be inactive, but no built graph has it',
      'expected "test" to be filtered out, but "test/1" runs in graph "ci"',
      'expected "nope" to be filtered out, but no built graph has it',
      'expected "nope" to be unfiltered, but no built graph has it',
    ]);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      '.tower/tests/ci.yml:8:15: warning: no graph defines a job "lint"',
      '.tower/tests/ci.yml:10:20: warning: no graph defines a job "nope"',
      '.tower/tests/ci.yml:11:23: warning: no graph defines a job "nope"',
      '.tower/tests/ci.yml:12:22: warning: no graph defines a job "nope"',
      '.tower/tests/ci.yml:13:25: warning: no graph defines a job "nope"',
    ]);
    const filteredOut = run(
      `  - { name: x, event: push, branch: main, changed: [README.md], unfiltered: [test] }\n`,
    );
    expect(filteredOut.results[0]?.failures).toEqual([
      'expected "test" to be unfiltered, but its path filter excludes "test/1" in graph "ci"',
    ]);
  });

  it('fails every test when the definitions have errors, or when the graphs do not build', () => {
    const broken = runGraphTests([
      {
        path: '.tower/ci.yml',
        content:
          'version: 1\nschedulers: [{ on: push, graph: ci }]\ngraphs:\n  ci: { jobs: { a: { kind: dummy, needs: [b] } } }\n  other: { jobs: { b: { kind: dumm } } }\n',
      },
      {
        path: '.tower/tests/a.yml',
        content: 'version: 1\ntests:\n  - { name: t, event: push, branch: main }\n',
      },
    ]);
    expect(broken.results).toEqual([
      {
        file: '.tower/tests/a.yml',
        name: 't',
        passed: false,
        failures: ['the definitions have errors'],
      },
    ]);
    const unbuildable = runGraphTests([
      {
        path: '.tower/ci.yml',
        content:
          'version: 1\nschedulers: [{ on: push, graph: ci }]\ngraphs:\n  ci: { jobs: { a: { kind: dummy, needs: [b] } } }\n',
      },
      {
        path: '.tower/tests/a.yml',
        content: 'version: 1\ntests:\n  - { name: t, event: push, branch: main }\n',
      },
    ]);
    expect(unbuildable.results[0]?.failures).toEqual([
      'the graphs do not build: .tower/ci.yml:4:43: error: unknown job "b" in graph "ci"',
    ]);
  });

  it('skips a test that cannot be read and runs the others', () => {
    const { results, diagnostics } =
      run(`  - { name: fine, event: push, branch: main, present: [build] }
  - { name: broken, event: pushed, branch: main }
`);
    expect(results.map((r) => [r.name, r.passed])).toEqual([['fine', true]]);
    expect(diagnostics.map((d) => d.message)).toEqual([
      '"pushed" is not one of push, pull_request, land, cron, trigger, api; did you mean "push"?',
    ]);
  });
});

describe('helpers', () => {
  it('measure edit distance with transpositions, and suggest only close names', () => {
    expect(editDistance('kidn', 'kind')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
    expect(closest('Build', ['build', 'test'])).toBe('build');
    expect(closest('xyz', ['build'])).toBeUndefined();
    expect(closest('buidl', ['build', 'builds'])).toBe('build');
  });

  it('read durations', () => {
    expect(parseDuration('1d2h3m4s')).toBe(93_784);
    expect(parseDuration(90)).toBe(90);
    expect(parseDuration(1.5)).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
    expect(parseDuration('5x')).toBeUndefined();
  });

  it('check cron schedules', () => {
    for (const ok of ['0 3 * * *', '*/15 0-6 1,15 jan-jun mon-fri', '@weekly', '0 0 * * 7'])
      expect(cronProblem(ok)).toBeUndefined();
    expect(cronProblem('@sometimes')).toMatch(/unknown schedule/);
    expect(cronProblem('*/0 * * * *')).toMatch(/a step is a positive number/);
    expect(cronProblem('1/2/3 * * * *')).toMatch(/a step is a positive number/);
    expect(cronProblem('5-1 * * * *')).toMatch(/backwards/);
    expect(cronProblem('1-2-3 * * * *')).toMatch(/not a number, a range or \*/);
    expect(cronProblem('x * * * *')).toMatch(/not a number/);
    expect(cronProblem('0 0 0 * *')).toMatch(/outside 1-31/);
  });

  it('format a diagnostic as compilers do', () => {
    expect(
      formatDiagnostic({
        severity: 'warning',
        file: '.tower/a.yml',
        line: 3,
        column: 9,
        path: 'x',
        message: 'careful',
      }),
    ).toBe('.tower/a.yml:3:9: warning: careful');
  });

  it('export a JSON Schema with an id and a title', () => {
    const schema = definitionsJsonSchema();
    expect(schema).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: 'urn:tower:schema:definitions:v1',
      title: 'Tower definitions, version 1',
      type: 'object',
    });
  });
});

describe('performance', () => {
  /** 50 platforms × (build, 197 test chunks, lint, done), across two included graphs: 10,001 jobs. */
  function bigDefinitions(): SourceFile[] {
    const platforms = Array.from({ length: 50 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    const graph = (name: string, list: string[]) =>
      `version: 1\ngraphs:\n  ${name}:\n    jobs:\n${list
        .map(
          (p) => `      build-${p}: { use: build, requires: [${p}, linux] }
      test-${p}: { use: test, requires: [${p}], needs: [build-${p}], changed: ["src/**"] }
      lint-${p}: { use: lint, requires: [${p}] }
      done-${p}: { kind: dummy, needs: { test-${p}: finished, lint-${p}: finished } }`,
        )
        .join('\n')}\n`;
    return [
      {
        path: '.tower/tower.yml',
        content: `version: 1
branches:
  default: { extras: false, max_priority: 50 }
  main: { extras: true }
schedulers:
  - { on: push, branches: [main], graph: per-checkin }
templates:
  build: { command: make build, max_runtime: 30m, artifacts: [dist/**], priority: 60 }
  test: { command: "make test CHUNK=\${{ chunk }}/\${{ chunks }}", chunks: 197, retries: 2 }
  lint: { command: make lint, requires: [linux] }
graphs:
  per-checkin:
    include: [first-half, second-half, { graph: extras, active: extras }]
  extras:
    jobs:
      extra-report: { kind: notify, needs: { done-p00: any }, comment: "built \${{ sha }}" }
`,
      },
      { path: '.tower/first-half.yml', content: graph('first-half', platforms.slice(0, 25)) },
      { path: '.tower/second-half.yml', content: graph('second-half', platforms.slice(25)) },
    ];
  }

  it('generates a 10,000-job graph well under a second', () => {
    const files = bigDefinitions();
    const start = performance.now();
    const { specs } = generateGraphs(files, push('main', { changedFiles: ['src/x.ts'] }));
    const elapsed = performance.now() - start;
    expect(specs[0]?.jobs.length).toBe(10_001);
    expect(job(specs[0], 'done-p49').dependencies).toHaveLength(198);
    expect(elapsed).toBeLessThan(1000);
  });
});

describe('the landing section', () => {
  const landing = (section: string, file = '.tower/land.yml'): SourceFile => ({
    path: file,
    content: `version: 1\nlanding:\n${section}`,
  });

  it('gives the base branch its queue configuration, with defaults', () => {
    expect(landingFor([landing('  branches: [main, "release/*"]\n')], 'release/2.0')).toEqual({
      config: {
        method: 'merge',
        approvals: 1,
        label: null,
        batch: { min: 1, max: 8 },
        parallel: 4,
      },
      diagnostics: [],
    });
    expect(
      landingFor(
        [
          landing(
            '  method: squash\n  approvals: 2\n  label: land\n  batch: { min: 2, max: 4 }\n  parallel: 8\n',
          ),
        ],
        'anything',
      ).config,
    ).toEqual({
      method: 'squash',
      approvals: 2,
      label: 'land',
      batch: { min: 2, max: 4 },
      parallel: 8,
    });
  });

  it('has no queue for branches it does not list, nor without a landing section', () => {
    expect(landingFor([landing('  branches: [main]\n')], 'develop').config).toBeNull();
    expect(landingFor(one('version: 1\n'), 'main')).toEqual({ config: null, diagnostics: [] });
  });

  it('says what is wrong, at its line, and is configured once', () => {
    const broken = landingFor(
      [landing('  method: octopus\n  batch: { min: 5, max: 2 }\n')],
      'main',
    );
    expect(broken.config).toBeNull();
    expect(broken.diagnostics.map(formatDiagnostic).join('\n')).toMatch(
      /\.tower\/land\.yml:3:\d+: error: .*merge.*squash.*rebase[\s\S]*\.tower\/land\.yml:4:\d+: error: batch min is greater than max/,
    );
    const twice = landingFor(
      [landing('  approvals: 1\n'), landing('  approvals: 2\n', '.tower/more.yml')],
      'main',
    );
    expect(twice.diagnostics.map(formatDiagnostic)).toEqual([
      '.tower/more.yml:2:1: error: landing is already configured at .tower/land.yml:2:1',
    ]);
  });
});
