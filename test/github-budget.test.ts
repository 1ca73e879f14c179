/**
 * Issue 6, acceptance 4: a 2,000-job graph on a push, against a simulator
 * with GitHub's real limits (80 content-creating requests a minute, 500 an
 * hour), completes with every job reported, in grouped check runs, and what
 * the content limit refused is retried once GitHub's retry-after has passed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubBudget, refusalBackoffMs } from '../src/db/github-budget.js';
import { toGitHubError } from '../src/github/octokit-port.js';
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

/** Octokit's error for a response, as the adapter sees it. */
function refusal(status: number, message: string, headers: Record<string, string> = {}) {
  return Object.assign(new Error(message), { status, response: { headers } });
}

describe('a rate limit that names no time to retry', () => {
  const now = new Date('2026-05-01T12:00:00Z');

  it('is told from other refusals', () => {
    const secondary = toGitHubError(
      'create a check run',
      refusal(403, 'You have exceeded a secondary rate limit. Please wait a few minutes.'),
      now,
    );
    expect(secondary).toMatchObject({ status: 403, retryAt: undefined, rateLimited: true });
    expect(secondary.transient).toBe(true);
    expect(toGitHubError('comment', refusal(429, 'Too many requests'), now).rateLimited).toBe(true);
    const forbidden = toGitHubError(
      'comment',
      refusal(403, 'Resource not accessible by integration'),
      now,
    );
    expect(forbidden).toMatchObject({ rateLimited: false, transient: false });
    const told = toGitHubError('comment', refusal(403, 'slow down', { 'retry-after': '30' }), now);
    expect(told).toMatchObject({ rateLimited: true, retryAt: new Date(now.getTime() + 30_000) });
  });

  it('backs off from 5 s, doubling to 15 minutes', () => {
    expect([1, 2, 3, 4, 8, 9, 10, 50].map(refusalBackoffMs)).toEqual([
      5_000, 10_000, 20_000, 40_000, 640_000, 900_000, 900_000, 900_000,
    ]);
  });
});

describe.each(backends())('the back-off of an installation GitHub refuses on $name', (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await backend.open();
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it('waits longer after each refusal in a row, per installation, and starts again after a success', async () => {
    const budget = createGitHubBudget(database.db);
    let now = new Date('2026-05-01T12:00:00Z').getTime();
    const waits: number[] = [];
    for (let i = 0; i < 10; i++) {
      // Each retry is sent as soon as the installation may send again, and is refused.
      const until = await budget.refused(501, new Date(now), undefined);
      waits.push(until.getTime() - now);
      expect(await budget.take(501, 1, new Date(until.getTime() - 1))).toMatchObject({
        granted: 0,
        retryAt: until,
        backingOff: true,
      });
      now = until.getTime();
    }
    expect(waits).toEqual([
      5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 900_000, 900_000,
    ]);
    // Another installation is not held back.
    expect(await budget.take(502, 1, new Date(now))).toEqual({
      granted: 1,
      retryAt: null,
      backingOff: false,
    });

    // A request goes through: the next refusal waits 5 s again.
    expect(await budget.take(501, 1, new Date(now))).toMatchObject({
      granted: 1,
      backingOff: true,
    });
    await budget.succeeded(501);
    expect(await budget.take(501, 1, new Date(now))).toMatchObject({
      granted: 1,
      backingOff: false,
    });
    const again = await budget.refused(501, new Date(now), undefined);
    expect(again.getTime() - now).toBe(5_000);

    // GitHub's own retry-after is kept as given, and does not count as a refusal without a time.
    const told = new Date(now + 60_000);
    expect(await budget.refused(503, new Date(now), told)).toEqual(told);
    expect(await budget.take(503, 1, new Date(now + 59_000))).toEqual({
      granted: 0,
      retryAt: told,
      backingOff: false,
    });
  });
});
