/**
 * `npm start` without a GitHub App:
 * Tower runs against the built-in GitHub simulator, with a demo repository
 * whose `.tower/` runs on the embedded minion. The demo app is installed,
 * a commit is pushed to main and a pull request opened, so that a newcomer
 * sees the whole flow: webhooks, graphs, check runs, logs, artifacts.
 */
import type { Config } from '../config/config.js';
import { createEventQueries } from '../db/events.js';
import type { Logger } from '../lib/logger.js';
import { startTower, type RunningTower } from '../main.js';
import { createDemo } from '../sandbox/demo.js';

const WEBHOOK_SECRET = 'sandbox-webhook-secret';

export async function startSandboxTower({
  config,
  logger,
}: {
  config: Config;
  logger: Logger;
}): Promise<RunningTower> {
  const demo = await createDemo();
  demo.app.webhookSecret = WEBHOOK_SECRET;
  // Signing in works too: the simulator's /login asks only for a login.
  demo.app.callbackUrl = `${config.publicUrl}/login/callback`;
  logger.info(
    { githubApiUrl: demo.apiUrl, repository: demo.repository.fullName },
    'No GitHub App configured: Tower runs against the built-in GitHub simulator, with a demo repository (docs/sandbox.md; TOWER_SANDBOX=false to leave it out)',
  );
  let tower: RunningTower;
  try {
    tower = await startTower({
      config: {
        ...config,
        githubApiUrl: demo.apiUrl,
        githubApp: {
          appId: demo.app.id,
          privateKey: demo.privateKey,
          webhookSecret: WEBHOOK_SECRET,
        },
        signIn: {
          clientId: demo.app.clientId,
          clientSecret: demo.app.clientSecret,
          githubUrl: demo.sim.urls.web,
        },
      },
      logger,
    });
  } catch (error) {
    await demo.close();
    throw error;
  }
  demo.app.webhookUrl = `${tower.url}/api/github/webhooks`;
  const pr = await demo.play();
  // The pull request's graph, once its webhook is processed: where to look.
  const events = createEventQueries(tower.database.db);
  const deadline = Date.now() + 30_000;
  let graphId: number | undefined;
  while (graphId === undefined && Date.now() < deadline) {
    graphId = (await events.latestOfPull(demo.repository.id, pr.number))?.graphIds[0];
    if (graphId === undefined) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (graphId === undefined) {
    logger.warn('sandbox: the demo pull request built no graph within 30 s');
  } else {
    logger.info(
      {
        graph: `${config.publicUrl}/api/v1/graphs/${graphId}`,
        page: `${config.publicUrl}/graphs/${graphId}`,
        pullRequest: `${demo.repository.fullName}#${pr.number}`,
      },
      'sandbox: the demo pull request is running: its graph is at the URL in "graph"',
    );
  }
  return {
    ...tower,
    async close() {
      await tower.close();
      await demo.close();
    },
  };
}
