/** A GitHub simulator per test file, with an app installed on one repository, and Octokit clients for it. */
import { execFile as execFileCb } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import type { Clock } from '../../src/lib/clock.js';
import type { LimitSettings } from '../../src/sandbox/limits.js';
import type { SimApp, SimInstallation, SimRepository } from '../../src/sandbox/model.js';
import { GitHubSimulator } from '../../src/sandbox/simulator.js';

export const execFile = promisify(execFileCb);

export type Sandbox = {
  sim: GitHubSimulator;
  apiUrl: string;
  app: SimApp;
  privateKey: string;
  installation: SimInstallation;
  repository: SimRepository;
  /** Octokit acting as the installation, authenticated as a GitHub App would be. */
  octokit: Octokit;
  /** Octokit acting as the app itself (JWT). */
  appOctokit: Octokit;
  close(): Promise<void>;
};

/** Starts at the real time: Octokit signs app JWTs with the real clock. */
export function manualClock(start = new Date()): Clock & { advance(ms: number): void } {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (ms) => void (now += ms) };
}

export async function startSandbox(
  options: {
    clock?: Clock;
    limits?: LimitSettings;
    webhookUrl?: string;
    webhookSecret?: string;
    files?: Record<string, string>;
  } = {},
): Promise<Sandbox> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tower-sandbox-'));
  const sim = await GitHubSimulator.create({
    dataDir,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const apiUrl = await sim.listen();
  const { app, privateKey } = sim.createApp({
    name: 'Tower',
    ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
    ...(options.webhookSecret ? { webhookSecret: options.webhookSecret } : {}),
  });
  const repository = await sim.createRepository({
    owner: 'acme',
    name: 'widgets',
    files: options.files ?? {
      'README.md': '# widgets\n',
      'src/index.js': 'export const answer = 42;\n',
      '.tower/graph.yml': 'version: 1\n',
    },
  });
  const installation = await sim.install(app, 'acme', [repository], 'acme-admin');
  const octokit = new Octokit({
    baseUrl: apiUrl,
    authStrategy: createAppAuth,
    auth: { appId: app.id, privateKey, installationId: installation.id },
  });
  const appOctokit = new Octokit({
    baseUrl: apiUrl,
    authStrategy: createAppAuth,
    auth: { appId: app.id, privateKey },
  });
  return {
    sim,
    apiUrl,
    app,
    privateKey,
    installation,
    repository,
    octokit,
    appOctokit,
    async close() {
      await sim.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The status of a failed Octokit request, or 'ok'. */
export async function statusOf(request: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await request;
    return 'ok';
  } catch (error) {
    return (error as { status: number }).status;
  }
}
