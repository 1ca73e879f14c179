import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryQueries } from '../src/db/deliveries.js';
import { createInstallationQueries } from '../src/db/installations.js';
import { createLogger } from '../src/lib/logger.js';
import { startTower, type RunningTower } from '../src/main.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

/**
 * Every kind of webhook the simulator emits goes to a real Tower server,
 * which verifies its signature and stores it; none may be refused.
 */
describe('simulator webhooks into Tower', () => {
  let s: Sandbox;
  let tower: RunningTower;
  let dataDir: string;
  const secret = 'end-to-end-secret';

  beforeAll(async () => {
    s = await startSandbox({ webhookSecret: secret });
    dataDir = await mkdtemp(join(tmpdir(), 'tower-e2e-'));
    tower = await startTower({
      config: {
        githubApiUrl: s.apiUrl,
        githubApp: { appId: s.app.id, privateKey: s.privateKey, webhookSecret: secret },
        database: { kind: 'pglite', dataDir },
        dataDir,
        host: '127.0.0.1',
        port: 0,
        publicUrl: 'http://localhost',
        logLevel: 'silent',
      },
      logger: createLogger({ level: 'silent' }),
    });
    s.app.webhookUrl = `${tower.url}/api/github/webhooks`;
  });
  afterAll(async () => {
    await tower?.close();
    await s?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers every event type, each accepted with its signature verified and stored once', async () => {
    const { sim, repository, installation } = s;
    const before = sim.deliveries.length;

    // installation and installation_repositories
    const extra = await sim.createRepository({
      owner: 'acme',
      name: 'gadgets',
      files: { 'a.txt': 'a\n' },
    });
    await sim.addRepositories(installation, [extra], 'acme-admin');
    await sim.removeRepositories(installation, [extra], 'acme-admin');

    // push, pull_request (opened, synchronize, labeled, closed, reopened), issue_comment
    await sim.push(repository, {
      branch: 'main',
      files: { 'CHANGELOG.md': '# changes\n' },
      author: 'alice',
    });
    await sim.push(repository, {
      branch: 'feature',
      files: { 'feature.txt': 'one\n' },
      author: 'alice',
    });
    const pr = await sim.openPullRequest(repository, {
      head: 'feature',
      title: 'Add feature',
      author: 'alice',
    });
    await sim.push(repository, {
      branch: 'feature',
      files: { 'feature.txt': 'two\n' },
      author: 'alice',
    });
    await sim.addLabel(pr, 'land', 'alice');
    await sim.comment(repository, pr.number, { body: '/tower retrigger build', author: 'bob' });
    // pull_request_review (submitted, dismissed), pull_request (converted_to_draft)
    const review = await sim.review(pr, { author: 'bob', state: 'APPROVED', body: 'Looks good' });
    await sim.dismissReview(pr, review, 'alice');
    await sim.convertToDraft(pr, 'alice');
    await sim.closePullRequest(pr, 'alice');
    await sim.reopenPullRequest(pr, 'alice');

    // a pull request from a fork
    const fork = await sim.fork(repository, 'mallory');
    await sim.push(fork, { branch: 'evil', files: { 'evil.txt': 'x\n' }, author: 'mallory' });
    const forkPr = await sim.openPullRequest(repository, {
      head: 'mallory:evil',
      title: 'From a fork',
      author: 'mallory',
    });
    expect(forkPr.head.repositoryId).toBe(fork.id);

    // check_run (rerequested, requested_action) and check_suite (rerequested)
    const { data: run } = await s.octokit.rest.checks.create({
      owner: 'acme',
      repo: 'widgets',
      name: 'build',
      head_sha: pr.head.sha,
      conclusion: 'failure',
      output: { title: 'Failed', summary: 'broken' },
      actions: [{ label: 'Retrigger', description: 'Run it again', identifier: 'retrigger' }],
    });
    await sim.rerequestCheckRun(run.id, 'alice');
    await sim.requestAction(run.id, 'retrigger', 'alice');
    await sim.rerequestCheckSuite(run.check_suite!.id, 'alice');
    await sim.settled();

    const sent = sim.deliveries.slice(before).filter((d) => d.appId === s.app.id);
    const kinds = new Set(sent.map((d) => (d.action ? `${d.event}.${d.action}` : d.event)));
    expect([...kinds].sort()).toEqual(
      [
        'check_run.requested_action',
        'check_run.rerequested',
        'check_suite.rerequested',
        'installation_repositories.added',
        'installation_repositories.removed',
        'issue_comment.created',
        'pull_request.closed',
        'pull_request.converted_to_draft',
        'pull_request.labeled',
        'pull_request.opened',
        'pull_request.reopened',
        'pull_request.synchronize',
        'pull_request_review.dismissed',
        'pull_request_review.submitted',
        'push',
      ].sort(),
    );
    expect(sent.every((d) => d.status === 202)).toBe(true);
    expect(sim.violations.list()).toEqual([]);

    const stored = createDeliveryQueries(tower.database.db);
    for (const delivery of sent) {
      expect(await stored.get(delivery.id)).toMatchObject({ event: delivery.event });
    }
  });

  it('keeps installations current from installation events, then hears the uninstall', async () => {
    const { sim, installation } = s;
    await tower.processor?.drain();
    const installations = createInstallationQueries(tower.database.db);
    // The installation in beforeAll was created before Tower listened: reinstalling announces it again.
    const again = await sim.install(s.app, 'acme', [s.repository], 'acme-admin');
    await tower.processor?.drain();
    expect(await installations.getInstallation(again.id)).toMatchObject({
      accountLogin: 'acme',
      removedAt: null,
    });
    expect((await installations.listRepositories(again.id)).map((r) => r.fullName)).toEqual([
      'acme/widgets',
    ]);

    await sim.uninstall(again, 'acme-admin');
    await tower.processor?.drain();
    expect((await installations.getInstallation(again.id))?.removedAt).toBeInstanceOf(Date);
    expect(sim.deliveries.at(-1)).toMatchObject({
      event: 'installation',
      action: 'deleted',
      status: 202,
    });
    expect(installation.id).not.toBe(again.id);
    expect(sim.violations.list()).toEqual([]);
  });

  it('signs each delivery so that a Tower with another secret refuses it', async () => {
    const { sim } = s;
    const { app } = sim.createApp({
      name: 'Impostor',
      webhookUrl: s.app.webhookUrl,
      webhookSecret: 'not-the-secret',
    });
    await sim.install(app, 'acme', [], 'acme-admin');
    expect(sim.deliveries.at(-1)).toMatchObject({ appId: app.id, status: 401 });
  });

  it('sends an app only the events it subscribed to, and installation events to all', async () => {
    const { sim, repository } = s;
    const { app } = sim.createApp({ name: 'Pushes only', events: ['push'] });
    const installation = await sim.install(app, 'acme', [repository], 'acme-admin');
    await sim.push(repository, { branch: 'quiet', files: { 'q.txt': 'q\n' }, author: 'alice' });
    const pr = await sim.openPullRequest(repository, {
      head: 'quiet',
      title: 'Quiet',
      author: 'alice',
    });
    await sim.review(pr, { author: 'bob', state: 'APPROVED' });
    await sim.settled();
    const events = sim.deliveries.filter((d) => d.appId === app.id).map((d) => d.event);
    expect(events).toEqual(['installation', 'push']);
    expect(installation.appId).toBe(app.id);
  });
});
