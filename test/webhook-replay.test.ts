/**
 * Issue 12, finding 16: the delivery id is not signed, so a captured
 * `check_run.rerequested` body posted again under a new id passed as a new
 * delivery and ran CI again. Replays are answered as duplicates and not
 * processed, end to end through intake and processor, against the simulator.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from './support/databases.js';
import { sign } from './support/github-app.js';
import { startGitHubTower, WEBHOOK_SECRET, type GitHubTower } from './support/github-tower.js';

const CI = `version: 1
schedulers:
  - { on: push, branches: [main], graph: ci }
graphs:
  ci:
    jobs:
      build: { requires: [linux], command: make build }
`;

describe.each(backends())('a replayed webhook on $name', (backend) => {
  let database: TestDatabase;
  let gt: GitHubTower;

  beforeAll(async () => {
    database = await backend.open();
    gt = await startGitHubTower(database, { files: { 'README.md': '# r\n', '.tower/ci.yml': CI } });
    gt.s.sim.setPermission(gt.s.repository, 'bob', 'write');
  });
  afterAll(async () => {
    await gt?.close();
    await database?.dispose();
  });

  it('does not rerun CI when a captured Re-run is posted again under a new delivery id', async () => {
    const { sim, repository } = gt.s;
    const sha = await sim.push(repository, {
      branch: 'main',
      files: { 'src/a.c': 'int a;\n' },
      author: 'bob',
    });
    await gt.settle();
    const minion = await gt.minion(['linux']);
    expect(await minion.runAll(() => 'failure')).toEqual(['build']);
    await gt.settle();

    // Bob presses Re-run: CI runs again, once.
    const build = sim.checkRuns(repository, sha).find((r) => r.name === 'ci / build')!;
    await sim.rerequestCheckRun(build.id, 'bob');
    await gt.settle();
    expect(await minion.runAll(() => 'success')).toEqual(['build']);
    await gt.settle();

    // Someone who saw that delivery (a proxy, a log) posts its signed body again.
    const captured = sim.deliveries.findLast(
      (d) => d.event === 'check_run' && d.action === 'rerequested',
    )!;
    const body = JSON.stringify(captured.payload);
    const replay = await gt.tower.app.request('/api/github/webhooks', {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'check_run',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': sign(WEBHOOK_SECRET, body),
      },
    });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toMatchObject({ event: 'check_run', status: 'duplicate' });
    await gt.settle();
    expect(await minion.runAll()).toEqual([]);
    expect(sim.violations.list()).toEqual([]);
  });
});
