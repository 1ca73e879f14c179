/**
 * Issue 6, acceptance 4: a 2,000-job graph on a push, against a simulator
 * with GitHub's real limits (80 content-creating requests a minute, 500 an
 * hour), completes with every job reported, in grouped check runs, and what
 * the content limit refused is retried once GitHub's retry-after has passed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubLimits } from '../src/sandbox/limits.js';
import { backends, type TestDatabase } from './support/databases.js';
import { startGitHubTower, type GitHubTower } from './support/github-tower.js';
import { manualClock } from './support/sandbox.js';

const suites = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
const CI = [
  'version: 1',
  'schedulers:',
  '  - { on: push, branches: [main], graph: big }',
  'graphs:',
  '  big:',
  '    jobs:',
  ...suites.map(
    (name) => `      ${name}: { requires: [linux], command: make ${name}, chunks: 250 }`,
  ),
  '',
].join('\n');

// The slowest backend is enough: this is about GitHub's budget, not storage.
const backend = backends().at(-1)!;

describe(`a 2,000-job graph inside GitHub's limits on ${backend.name}`, () => {
  let database: TestDatabase;
  let gt: GitHubTower;
  const clock = manualClock();

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, {
      files: { 'README.md': '# big\n', '.tower/ci.yml': CI },
      limits: githubLimits,
      clock,
    });
  });
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });

  it('reports every job in grouped check runs, and retries what the content limit refused', async () => {
    const { sim, repository, octokit } = gt.s;
    const sha = await sim.push(repository, {
      branch: 'main',
      files: { 'src/x.c': 'int x;\n' },
      author: 'alice',
    });
    await gt.settle();
    const names = () =>
      sim
        .checkRuns(repository, sha)
        .map((r) => r.name)
        .sort();
    expect(names()).toEqual(
      ['Tower: big', ...suites.map((name) => `big / ${name} (250 jobs)`)].sort(),
    );

    const minions = await Promise.all([1, 2, 3, 4].map(() => gt.minion(['linux'])));
    const ran = (
      await Promise.all(
        minions.map((m) => m.runAll((label) => (label === 'delta/17' ? 'failure' : 'success'))),
      )
    ).flat();
    expect(ran).toHaveLength(2000);

    // Someone else spends what is left of the installation's minute of content requests first.
    for (let i = 0; ; i++) {
      const answer = await octokit.rest.git
        .createRef({ owner: 'acme', repo: 'widgets', ref: `refs/tags/spent-${i}`, sha })
        .catch((error: { status: number }) => error);
      if ('status' in answer && answer.status === 403) break;
    }
    await gt.settle();
    const refused = sim.requests.filter(
      (r) => r.refused && r.operationId.startsWith('checks/'),
    ).length;
    expect(refused).toBeGreaterThan(0);
    expect(sim.checkRuns(repository, sha).every((r) => r.status === 'completed')).toBe(false);

    // Past the retry-after, Tower sends what was refused.
    clock.advance(61_000);
    await gt.settle();
    const runs = sim.checkRuns(repository, sha);
    expect(runs.every((r) => r.status === 'completed')).toBe(true);
    expect(runs.find((r) => r.name === 'Tower: big')).toMatchObject({ conclusion: 'failure' });
    expect(runs.find((r) => r.name === 'big / delta (250 jobs)')).toMatchObject({
      conclusion: 'failure',
      output: { title: '250 jobs: 1 failure, 249 success.' },
    });
    // Every job is in its group's table.
    for (const name of suites) {
      const text = runs.find((r) => r.name === `big / ${name} (250 jobs)`)!.output.text!;
      for (let chunk = 1; chunk <= 250; chunk++) expect(text).toContain(`[${name}/${chunk}]`);
    }
    const checkRequests = sim.requests.filter(
      (r) => !r.refused && (r.operationId === 'checks/create' || r.operationId === 'checks/update'),
    );
    // Far inside the budget: a few requests a check run, not a few a job.
    expect(checkRequests.length).toBeLessThanOrEqual(9 * 4);
    expect(sim.violations.list()).toEqual([]);
  }, 240_000);
});
