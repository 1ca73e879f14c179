/**
 * The simulator as a standalone server with a demo GitHub App, installation
 * and repository, for trying Tower (or any GitHub client) without GitHub.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitHubSimulator } from './simulator.js';

export type SandboxOptions = {
  port: string;
  host: string;
  dataDir: string;
  webhookUrl?: string;
  webhookSecret: string;
};

export const demoFiles = {
  'README.md': '# demo\n\nA repository served by the Tower GitHub simulator.\n',
  'package.json':
    JSON.stringify({ name: 'demo', version: '1.0.0', scripts: { test: 'node test.js' } }, null, 2) +
    '\n',
  'test.js':
    "const chunk = process.env.TOWER_CHUNK ?? '1';\nconsole.log(`tests of chunk ${chunk} pass`);\n",
  // The graph `npm start` runs on its own: node is all it needs, as the embedded minion has it.
  '.tower/ci.yml': [
    'version: 1',
    'schedulers:',
    '  - { on: push, branches: [main], graph: ci }',
    '  - { on: pull_request, graph: ci }',
    'graphs:',
    '  ci:',
    '    jobs:',
    '      build:',
    '        requires: [node]',
    '        command: mkdir -p dist && node --version > dist/node-version.txt && echo built',
    '        artifacts: [dist/**]',
    '      test: { requires: [node], command: npm test, needs: [build], chunks: 2 }',
    '      lint: { requires: [node], command: node --check test.js && echo lint ok }',
    '      done: { kind: dummy, needs: { test: finished, lint: finished } }',
    '',
  ].join('\n'),
};

/**
 * The simulator with the demo app and repository, not installed yet:
 * `play()` installs the app (so that a Tower listening at the app's webhook
 * URL hears of it), pushes a commit to main and opens a pull request.
 */
export async function createDemo(options: { host?: string; port?: number } = {}) {
  // The simulator keeps its state in memory, so its repositories live only as long as it does.
  const repositories = await mkdtemp(join(tmpdir(), 'tower-sandbox-'));
  const sim = await GitHubSimulator.create({ dataDir: repositories });
  const apiUrl = await sim.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  const { app, privateKey } = sim.createApp({ name: 'Tower' });
  const repository = await sim.createRepository({
    owner: 'demo-org',
    name: 'demo',
    files: demoFiles,
  });
  return {
    sim,
    apiUrl,
    app,
    privateKey,
    repository,
    async play() {
      await sim.install(app, 'demo-org', [repository], 'demo-admin');
      await sim.push(repository, {
        branch: 'main',
        files: { 'CHANGELOG.md': '# Changes\n\n- Tower runs here.\n' },
        message: 'Start a changelog',
        author: 'demo-admin',
      });
      await sim.push(repository, {
        branch: 'greeting',
        files: { 'hello.js': "console.log('hello from a pull request');\n" },
        message: 'Say hello',
        author: 'demo-admin',
      });
      const pr = await sim.openPullRequest(repository, {
        head: 'greeting',
        title: 'Say hello',
        author: 'demo-admin',
      });
      await sim.settled();
      return pr;
    },
    async close() {
      await sim.close();
      await rm(repositories, { recursive: true, force: true });
    },
  };
}

export async function startDemoSandbox(options: Omit<SandboxOptions, 'port'> & { port: number }) {
  await mkdir(options.dataDir, { recursive: true });
  // The simulator keeps its other state in memory: repositories from an earlier run would be orphans.
  const repositories = join(options.dataDir, 'repositories');
  await rm(repositories, { recursive: true, force: true });
  const sim = await GitHubSimulator.create({ dataDir: repositories });
  const apiUrl = await sim.listen(options.port, options.host);
  const { app, privateKey } = sim.createApp({
    name: 'Tower',
    webhookSecret: options.webhookSecret,
    ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
  });
  const repository = await sim.createRepository({
    owner: 'demo-org',
    name: 'demo',
    files: demoFiles,
  });
  const installation = await sim.install(app, 'demo-org', [repository], 'demo-admin');
  const keyPath = join(options.dataDir, 'app-private-key.pem');
  await writeFile(keyPath, privateKey, { mode: 0o600 });
  const token = sim.tokens.issue(installation.id, sim.clock.now());
  const banner = [
    `GitHub simulator listening: ${apiUrl}`,
    `  app id:           ${app.id}`,
    `  private key:      ${keyPath}`,
    `  webhook secret:   ${app.webhookSecret}`,
    `  webhooks go to:   ${app.webhookUrl ?? '(nowhere: pass --webhook-url)'}`,
    `  installation id:  ${installation.id}`,
    `  repository:       ${repository.fullName} (${sim.cloneUrl(repository)})`,
    `  installation token (valid until ${token.expiresAt.toISOString()}):`,
    `  ${token.token}`,
    '',
    `Try: curl -H "Authorization: token ${token.token}" ${apiUrl}/repos/${repository.fullName}`,
    '',
  ].join('\n');
  return { sim, apiUrl, app, installation, repository, token, banner, close: () => sim.close() };
}
