/**
 * Issue 6, acceptance 5: `tower serve` (what `npm start` runs) on a fresh
 * directory with no GitHub App starts the simulator, a demo repository and
 * the embedded minion, pushes a commit and opens a pull request, prints the
 * URL of the pull request's graph, and that graph completes, with check runs,
 * well within two minutes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './support/postgres-server.js';
import { baseEnv, runTower, type TowerProcess } from './support/processes.js';

describe('npm start without a GitHub App', () => {
  let tower: TowerProcess | undefined;
  let cwd: string | undefined;
  afterEach(async () => {
    await tower?.stop('SIGKILL');
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it('runs the demo pull request end to end on the simulator and the embedded minion', async () => {
    cwd = await mkdtemp(join(tmpdir(), 'tower-sandbox-start-'));
    const port = await freePort();
    const started = Date.now();
    tower = runTower(['serve'], { cwd, env: baseEnv({ TOWER_PORT: String(port) }) });
    let graphUrl: string | undefined;
    while (!graphUrl && Date.now() - started < 60_000) {
      graphUrl = /"graph":"([^"]+)"/.exec(tower.output())?.[1];
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(graphUrl, tower.output()).toMatch(
      new RegExp(`^http://localhost:${port}/api/v1/graphs/\\d+$`),
    );
    expect(tower.output()).toContain('No GitHub App configured');
    type Graph = {
      graph: { state: string; result: string | null };
      jobs: { label: string; result: string | null; runs: { id: number }[] }[];
    };
    let graph: Graph | undefined;
    while (Date.now() - started < 120_000) {
      graph = (await (await fetch(graphUrl!)).json()) as Graph;
      if (graph.graph.state === 'done') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(graph?.graph, tower.output()).toEqual(
      expect.objectContaining({ state: 'done', result: 'success' }),
    );
    expect(Date.now() - started).toBeLessThan(120_000);
    expect(graph!.jobs.map((j) => [j.label, j.result])).toEqual([
      ['build', 'success'],
      ['done', 'success'],
      ['lint', 'success'],
      ['test/1', 'success'],
      ['test/2', 'success'],
    ]);
    const chunk = graph!.jobs.find((j) => j.label === 'test/2')!;
    const log = await (
      await fetch(`http://127.0.0.1:${port}/api/v1/runs/${chunk.runs[0]!.id}/log`)
    ).text();
    expect(log).toContain('tests of chunk 2 pass');
    expect(await tower.stop('SIGTERM')).toBe(0);
  }, 150_000);
});
