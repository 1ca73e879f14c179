/**
 * The simulator as a standalone server with a demo GitHub App, installation
 * and repository, for trying Tower (or any GitHub client) without GitHub.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
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
  'test.js': "console.log('tests pass');\n",
};

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
