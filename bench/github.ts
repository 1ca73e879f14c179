/**
 * Check-run requests per job (issue 6, acceptance 4): Tower against the
 * GitHub simulator with GitHub's real limits (80 content-creating requests
 * a minute, 500 an hour) and a clock that moves only when told. Minions
 * finish the jobs a few at a time, and Tower publishes between, as its
 * publisher passes would; every check-run create and update Tower sends is
 * counted, the summary's apart.
 *
 * - 40 jobs: one check run a job (target: at most 2 requests a job, plus
 *   the summary's).
 * - 2,000 jobs: grouped check runs, inside the hourly budget.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/db/connection.js';
import type { CheckRunFields, GitHubPort } from '../src/github/port.js';
import { githubLimits } from '../src/sandbox/limits.js';
import type { TestDatabase } from '../test/support/databases.js';
import { startGitHubTower } from '../test/support/github-tower.js';
import { manualClock } from '../test/support/sandbox.js';

async function pglite(): Promise<TestDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tower-bench-github-'));
  const database = await openDatabase({ kind: 'pglite', dataDir });
  await database.migrate();
  return {
    ...database,
    url: undefined,
    async dispose() {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function definitions(jobs: number): string {
  const lines = [
    'version: 1',
    'schedulers:',
    '  - { on: push, branches: [main], graph: ci }',
    'graphs:',
    '  ci:',
    '    jobs:',
  ];
  if (jobs <= 50) {
    for (let i = 0; i < jobs; i++) {
      const needs = i >= 10 ? `, needs: [job-${String(i - 10).padStart(2, '0')}]` : '';
      lines.push(
        `      job-${String(i).padStart(2, '0')}: { requires: [linux], command: make${needs} }`,
      );
    }
  } else {
    for (let i = 0; i < jobs / 250; i++) {
      lines.push(`      suite-${i}: { requires: [linux], command: make, chunks: 250 }`);
    }
  }
  return lines.join('\n') + '\n';
}

type Counts = { summary: number; others: number; refused: number };

async function scenario(
  jobs: number,
): Promise<{ counts: Counts; checkRuns: number; seconds: number }> {
  const database = await pglite();
  const clock = manualClock();
  const counts: Counts = { summary: 0, others: 0, refused: 0 };
  const count = (fields: CheckRunFields) => {
    if (fields.name.startsWith('Tower: ')) counts.summary++;
    else counts.others++;
  };
  const gt = await startGitHubTower(database, {
    files: { 'README.md': '# bench\n', '.tower/ci.yml': definitions(jobs) },
    limits: githubLimits,
    clock,
    wrapGitHub: (port: GitHubPort): GitHubPort => ({
      ...port,
      async createCheckRun(repo, fields) {
        count(fields);
        return port.createCheckRun(repo, fields);
      },
      async updateCheckRun(repo, id, fields) {
        count(fields);
        return port.updateCheckRun(repo, id, fields);
      },
    }),
  });
  const started = performance.now();
  try {
    const { sim, repository } = gt.s;
    const sha = await sim.push(repository, {
      branch: 'main',
      files: { 'a.txt': 'a\n' },
      author: 'alice',
    });
    await gt.settle();
    const minions = await Promise.all([1, 2, 3, 4].map(() => gt.minion(['linux'])));
    // Each round: every minion finishes one job, a second passes, Tower publishes.
    for (;;) {
      const claimed = await Promise.all(minions.map((m) => m.claim()));
      const runs = claimed.filter((run) => run !== undefined);
      if (runs.length === 0) break;
      await Promise.all(runs.map((run, i) => minions[i]!.report(run.runId, 'success')));
      clock.advance(jobs <= 50 ? 1000 : 20);
      await gt.settle();
    }
    // Whatever waits for the budget goes out as it frees.
    for (
      let i = 0;
      i < 120 && sim.checkRuns(repository, sha).some((r) => r.status !== 'completed');
      i++
    ) {
      clock.advance(30_000);
      await gt.settle();
    }
    counts.refused = sim.requests.filter((r) => r.refused).length;
    const checkRuns = sim.checkRuns(repository, sha);
    if (checkRuns.some((r) => r.status !== 'completed')) throw new Error('check runs left open');
    return { counts, checkRuns: checkRuns.length, seconds: (performance.now() - started) / 1000 };
  } finally {
    await gt.close();
    await database.dispose();
  }
}

export async function githubSuite(): Promise<string> {
  const rows: string[] = [];
  for (const jobs of [40, 2000]) {
    const { counts, checkRuns, seconds } = await scenario(jobs);
    rows.push(
      `| ${jobs.toLocaleString('en-US')} | ${checkRuns} | ${counts.summary} | ${counts.others} | ${(counts.others / jobs).toFixed(2)} | ${counts.refused} | ${seconds.toFixed(1)} |`,
    );
  }
  return [
    '### Check-run requests per job, against GitHub’s limits',
    '',
    'A push builds the graph; four minions finish jobs a few at a time, with a publishing pass (and a simulated second) after each round. Every check-run create and update Tower sends is counted; the summary check run’s apart. The simulator enforces 80 content-creating requests a minute and 500 an hour.',
    '',
    '| jobs | check runs | summary requests | job and group requests | requests per job | refused by a limit | wall time (s) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}
