/**
 * Tower wired to the GitHub simulator the way a deployment is wired to
 * GitHub: a GitHub App on the simulator's API URL, webhooks over HTTP into
 * Tower's listening server, check runs and comments sent through Octokit.
 * The background loops are not started: `settle()` runs each pass until
 * nothing is left, so that tests see a deterministic state.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { installations, repositories } from '../../src/db/schema.js';
import type { Clock } from '../../src/lib/clock.js';
import { createOctokitPort } from '../../src/github/octokit-port.js';
import type { GitHubPort } from '../../src/github/port.js';
import { createLogger } from '../../src/lib/logger.js';
import { createTower, type Tower } from '../../src/main.js';
import { createFileArtifactStore } from '../../src/minions/artifact-store.js';
import type { LimitSettings } from '../../src/sandbox/limits.js';
import type { SimPullRequest, SimRepository } from '../../src/sandbox/model.js';
import { inProcessConfig } from './config.js';
import type { TestDatabase } from './databases.js';
import { startSandbox, type Sandbox } from './sandbox.js';

export const REGISTRATION_TOKEN = 'registration-token-0123456789';
/** The app's webhook secret: tests that replay a captured delivery sign with it. */
export const WEBHOOK_SECRET = 'github-tower-webhook-secret';

export type GitHubTower = {
  s: Sandbox;
  tower: Tower;
  database: TestDatabase;
  /** Webhooks delivered, deliveries processed, check runs and comments published: until quiet. */
  settle(): Promise<void>;
  /** Comments on the pull request as `author`, then settles. */
  say(pr: SimPullRequest, author: string, body: string): Promise<void>;
  /** Tower's comments on the pull request, oldest first. */
  replies(pr: SimPullRequest): string[];
  /** A minion with these tags, speaking the minion API. */
  minion(tags: string[], trust?: 'trusted' | 'untrusted'): Promise<TestMinion>;
  close(): Promise<void>;
};

export type TestMinion = {
  id: number;
  /** Its `tmc_` credential. */
  credential: string;
  /** Claims the next run; undefined when there is none for it. */
  claim(): Promise<
    { runId: number; label: string; graphId: number; sha: string; readToken: string } | undefined
  >;
  report(runId: number, result: string, extra?: Record<string, unknown>): Promise<void>;
  log(runId: number, text: string): Promise<void>;
  artifact(runId: number, name: string, body: string): Promise<void>;
  /** Claims and reports every run it can get, with the result `decide` gives each job. */
  runAll(decide?: (label: string) => string): Promise<string[]>;
};

export async function startGitHubTower(
  database: TestDatabase,
  options: {
    files?: Record<string, string>;
    limits?: LimitSettings;
    clock?: Clock;
    /** Wraps Tower's GitHub port (to count what it asks, say). */
    wrapGitHub?: (port: GitHubPort) => GitHubPort;
    /** Sign-in with GitHub on: the app's OAuth client, called back at http://localhost/login/callback. */
    signIn?: boolean;
  } = {},
): Promise<GitHubTower> {
  // Many tests in a minute send more than GitHub's 80 content requests: unless a test is about
  // the limits, both sides allow plenty.
  const limits = options.limits ?? {
    requestsPerHour: 100_000,
    contentPerMinute: 10_000,
    contentPerHour: 100_000,
  };
  const s = await startSandbox({
    webhookSecret: WEBHOOK_SECRET,
    limits,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.files ? { files: options.files } : {}),
  });
  const artifactsDir = await mkdtemp(join(tmpdir(), 'tower-github-artifacts-'));
  await database.db.insert(installations).values({
    id: s.installation.id,
    accountLogin: 'acme',
    accountId: 1,
    accountType: 'Organization',
  });
  await database.db.insert(repositories).values({
    id: s.repository.id,
    installationId: s.installation.id,
    fullName: s.repository.fullName,
  });
  const tower = await createTower({
    config: {
      ...inProcessConfig({
        appId: s.app.id,
        privateKey: s.privateKey,
        webhookSecret: WEBHOOK_SECRET,
      }),
      githubApiUrl: s.apiUrl,
      minionTokens: { trusted: REGISTRATION_TOKEN },
      ...(options.signIn
        ? {
            signIn: {
              clientId: s.app.clientId,
              clientSecret: s.app.clientSecret,
              githubUrl: s.sim.urls.web,
            },
            sessionSecret: 'a-session-secret-for-tests-only-0123456789',
          }
        : {}),
    },
    // TOWER_TEST_LOG=debug shows what Tower did, when a test needs explaining.
    logger: createLogger({
      level: (process.env.TOWER_TEST_LOG as 'debug' | undefined) ?? 'silent',
    }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.wrapGitHub
      ? {
          github: options.wrapGitHub(
            createOctokitPort({
              appId: s.app.id,
              privateKey: s.privateKey,
              baseUrl: s.apiUrl,
              ...(options.clock ? { now: () => options.clock!.now() } : {}),
            }),
          ),
        }
      : {}),
    database,
    artifacts: createFileArtifactStore(artifactsDir),
    // Tower's budget keeps the same margin below the simulator's limits as below GitHub's.
    contentLimits: {
      perMinute: Math.floor(limits.contentPerMinute * 0.875),
      perHour: Math.floor(limits.contentPerHour * 0.9),
    },
  });
  const server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: tower.app.fetch, hostname: '127.0.0.1', port: 0 }, () =>
      resolve(started),
    );
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.app.webhookUrl = `${url}/api/github/webhooks`;
  // inProcessConfig's public URL: tests follow redirects to it with app.request().
  if (options.signIn) s.app.callbackUrl = 'http://localhost/login/callback';

  async function settle() {
    for (let round = 0; round < 50; round++) {
      await s.sim.settled();
      await tower.processor!.drain();
      await tower.serverJobs.tick();
      const landed = await tower.landing!.tick();
      const published = landed + (await tower.checks!.tick()) + (await tower.comments!.tick());
      await s.sim.settled();
      const pending = s.sim.deliveries.length;
      await tower.processor!.drain();
      if (published === 0 && pending === s.sim.deliveries.length) return;
    }
    throw new Error('Tower and the simulator did not settle');
  }

  const call = (path: string, token: string, body: unknown) =>
    tower.app.request(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  async function minion(tags: string[], trust: 'trusted' | 'untrusted' = 'trusted') {
    const registered = await call('/api/v1/minion/register', REGISTRATION_TOKEN, {
      name: `minion-${tags.join('-')}`,
      tags,
      trust,
    });
    const { minionId, credential } = (await registered.json()) as {
      minionId: number;
      credential: string;
    };
    const self: TestMinion = {
      id: minionId,
      credential,
      async claim() {
        const response = await call('/api/v1/minion/claim', credential, { waitSeconds: 0 });
        if (response.status === 204) return undefined;
        const { run } = (await response.json()) as {
          run: { runId: number; label: string; graphId: number; sha: string; readToken: string };
        };
        return run;
      },
      async report(runId, result, extra = {}) {
        const response = await call(`/api/v1/minion/runs/${runId}/report`, credential, {
          result,
          ...extra,
        });
        if (response.status !== 200) throw new Error(`report refused: ${await response.text()}`);
      },
      async log(runId, text) {
        await call(`/api/v1/minion/runs/${runId}/logs`, credential, { seq: 0, data: text });
      },
      async artifact(runId, name, body) {
        await tower.app.request(`/api/v1/minion/runs/${runId}/artifacts/${name}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${credential}` },
          body,
        });
      },
      async runAll(decide = () => 'success') {
        const ran: string[] = [];
        for (;;) {
          const run = await self.claim();
          if (!run) return ran;
          ran.push(run.label);
          await self.report(run.runId, decide(run.label));
        }
      },
    };
    return self;
  }

  return {
    s,
    tower,
    database,
    settle,
    async say(pr, author, body) {
      await s.sim.comment(s.repository, pr.number, { body, author });
      await settle();
    },
    replies: (pr) =>
      s.sim
        .comments(s.repository, pr.number)
        .filter((c) => c.user.type === 'Bot')
        .map((c) => c.body),
    minion,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tower.close();
      await s.close();
      await rm(artifactsDir, { recursive: true, force: true });
    },
  };
}

/** The check runs the simulator holds for a commit, by name: status, conclusion and title. */
export function checksOf(gt: GitHubTower, repository: SimRepository, sha: string) {
  return Object.fromEntries(
    gt.s.sim
      .checkRuns(repository, sha)
      .map((run) => [
        run.name,
        { status: run.status, conclusion: run.conclusion, title: run.output.title },
      ]),
  );
}
