import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { instance } from '@viz-js/viz';
import { afterEach, describe, expect, it } from 'vitest';
import {
  graphCheckCommand,
  graphCommand,
  graphTestCommand,
  initCommand,
  schemaCommand,
  type GraphOptions,
} from '../src/cli/graph-commands.js';
import { baseEnv, runTower } from './support/processes.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function emptyDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tower-graph-cli-'));
  dirs.push(dir);
  return dir;
}

function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (t: string) => void (out += t), err: (t: string) => void (err += t) },
    out: () => out,
    err: () => err,
  };
}

const graphOptions = (options: Partial<GraphOptions>): GraphOptions => ({
  event: 'push',
  branch: 'main',
  sha: 'c'.repeat(40),
  format: 'text',
  ...options,
});

describe('tower init, graph check and graph test', () => {
  it('writes a starter .tower/ that checks and tests clean, and refuses to overwrite it', async () => {
    const dir = await emptyDir();
    const init = capture();
    expect(await initCommand(dir, init.io)).toBe(0);
    expect(init.out()).toContain('.tower/tower.yml');
    expect(await initCommand(dir, capture().io)).toBe(1);

    const check = capture();
    expect(await graphCheckCommand(dir, check.io)).toBe(0);
    expect(check.err()).toMatch(/0 error\(s\)/);

    const test = capture();
    expect(await graphTestCommand(dir, test.io)).toBe(0);
    expect(test.out()).toMatch(/3 passed, 0 failed/);
  });

  it('fails `graph test` when an assertion file contradicts the graph', async () => {
    const dir = await emptyDir();
    await initCommand(dir, capture().io);
    const path = join(dir, '.tower', 'tests', 'ci.yml');
    const contradiction = (await readFile(path, 'utf8')).replace(
      'absent: [build]',
      'present: [build]',
    );
    await writeFile(path, contradiction);
    const test = capture();
    expect(await graphTestCommand(dir, test.io)).toBe(1);
    expect(test.out()).toMatch(
      /FAIL .tower\/tests\/ci.yml: pushes to other branches build nothing/,
    );
    expect(test.out()).toMatch(/2 passed, 1 failed/);
  });

  it('reports definition errors as file:line:col and exits 1', async () => {
    const dir = await emptyDir();
    await initCommand(dir, capture().io);
    const path = join(dir, '.tower', 'tower.yml');
    await writeFile(
      path,
      (await readFile(path, 'utf8')).replace('needs: [build]\n', 'needs: [biuld]\n'),
    );
    const check = capture();
    expect(await graphCheckCommand(dir, check.io)).toBe(1);
    expect(check.err()).toMatch(/^\.tower\/tower\.yml:\d+:\d+: error: .*biuld.*build/m);
    expect(await graphCommand(dir, graphOptions({}), capture().io)).toBe(1);
  });

  it('says so when there is nothing to check', async () => {
    const dir = await emptyDir();
    const check = capture();
    expect(await graphCheckCommand(dir, check.io)).toBe(1);
    expect(check.err()).toContain('no .tower/ definitions');
    const graph = capture();
    expect(await graphCommand(dir, graphOptions({}), graph.io)).toBe(1);
    expect(graph.err()).toContain('tower init');
  });
});

describe('tower graph', () => {
  it('prints the graph as JSON, text, or DOT that Graphviz renders with inactive jobs drawn distinctly', async () => {
    const dir = await emptyDir();
    await initCommand(dir, capture().io);

    const json = capture();
    expect(await graphCommand(dir, graphOptions({ format: 'json' }), json.io)).toBe(0);
    const spec = JSON.parse(json.out()) as {
      version: number;
      graph: string;
      jobs: { label: string; inactive: boolean }[];
    };
    expect(spec).toMatchObject({ version: 1, graph: 'ci' });
    expect(spec.jobs.map((j) => j.label)).toEqual([
      'all-green',
      'build',
      'coverage-report',
      'lint',
      'test',
    ]);

    const text = capture();
    expect(
      await graphCommand(dir, graphOptions({ event: 'pull_request', branch: 'develop' }), text.io),
    ).toBe(0);
    expect(text.out()).toMatch(/coverage-report.*inactive/);

    const dot = capture();
    expect(
      await graphCommand(
        dir,
        graphOptions({ event: 'pull_request', branch: 'develop', format: 'dot' }),
        dot.io,
      ),
    ).toBe(0);
    expect(dot.out()).toMatch(/^digraph /);
    const coverageNode = dot
      .out()
      .split('\n')
      .find((line) => line.includes('"coverage-report" ['));
    const buildNode = dot
      .out()
      .split('\n')
      .find((line) => line.includes('"build" ['));
    expect(coverageNode).toMatch(/dashed/);
    expect(buildNode).not.toMatch(/dashed/);
    const svg = (await instance()).renderString(dot.out(), { format: 'svg' });
    expect(svg).toContain('<svg');
    expect(svg).toMatch(/coverage(-|&#45;)report/); // Graphviz writes '-' as an entity in SVG
    expect(svg).toMatch(/stroke-dasharray/);
  });

  it('applies path filters from a list of changed files', async () => {
    const dir = await emptyDir();
    await initCommand(dir, capture().io);
    const path = join(dir, '.tower', 'tower.yml');
    await writeFile(
      path,
      (await readFile(path, 'utf8')).replace(
        'needs: [build]\n',
        'needs: [build]\n        changed: ["src/**"]\n',
      ),
    );
    const changed = join(dir, 'changed.txt');
    await writeFile(changed, 'README.md\n');
    const json = capture();
    expect(
      await graphCommand(dir, graphOptions({ format: 'json', changedFiles: changed }), json.io),
    ).toBe(0);
    const spec = JSON.parse(json.out()) as { jobs: { label: string; filtered: boolean }[] };
    expect(spec.jobs.find((j) => j.label === 'test')?.filtered).toBe(true);
  });

  it('refuses unknown events and formats, and says when no scheduler matches', async () => {
    const dir = await emptyDir();
    await initCommand(dir, capture().io);
    const badEvent = capture();
    expect(await graphCommand(dir, graphOptions({ event: 'deploy' }), badEvent.io)).toBe(2);
    expect(badEvent.err()).toContain('--event must be one of push');
    expect(await graphCommand(dir, graphOptions({ format: 'yaml' }), capture().io)).toBe(2);
    const none = capture();
    expect(await graphCommand(dir, graphOptions({ branch: 'feature/x' }), none.io)).toBe(0);
    expect(none.err()).toContain('no scheduler builds a graph for push on feature/x');
    const other = capture();
    expect(await graphCommand(dir, graphOptions({ graph: 'nightly' }), other.io)).toBe(0);
    expect(other.err()).toContain('does not build the graph nightly');
  });

  it('prints the JSON Schema for editors', () => {
    const out = capture();
    expect(schemaCommand(out.io)).toBe(0);
    const schema = JSON.parse(out.out()) as Record<string, unknown>;
    expect(schema.$schema).toMatch(/json-schema\.org/);
    const tests = capture();
    expect(schemaCommand(tests.io, { tests: true })).toBe(0);
    expect((JSON.parse(tests.out()) as { $id: string }).$id).not.toBe(schema.$id);
  });
});

describe('the tower command', () => {
  it('runs init, graph check and graph test as a process', async () => {
    const dir = await emptyDir();
    const env = baseEnv({});
    expect(await runTower(['init', dir], { cwd: dir, env }).exited).toBe(0);
    const check = runTower(['graph', 'check', dir], { cwd: dir, env });
    expect(await check.exited).toBe(0);
    const test = runTower(['graph', 'test'], { cwd: dir, env });
    expect(await test.exited).toBe(0);
    expect(test.output()).toContain('3 passed, 0 failed');
  });
});
