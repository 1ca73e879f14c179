/**
 * `tower minion`: runs the minion agent on this machine against a Tower
 * server (docs/minions.md). SIGTERM or SIGINT stops claiming and lets
 * running jobs finish within the grace period, then hands them back; a
 * second signal hands them back at once.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../lib/errors.js';
import { createLogger, type LogLevel } from '../lib/logger.js';
import { createMinionAgent, hostTags } from '../minions/agent.js';
import { minionTrusts, type MinionTrust } from '../minions/schemas.js';

type MinionOptions = {
  server: string;
  token?: string;
  name: string;
  tags?: string;
  trust?: string;
  jobs?: string;
  isolation: string;
  runUid?: number;
  workdir: string;
  concurrency: number;
  shutdownGrace: number;
  keepWorkspaces?: boolean;
  logLevel: LogLevel;
};

const TAG_LIST = /^[a-z0-9._-]+(,[a-z0-9._-]+)*$/;

function wholeNumber(min: number, max: number) {
  return (value: string) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return number;
  };
}

export const minionCommand = new Command('minion')
  .description('Run a minion: claim jobs from a Tower server and run them on this machine')
  .requiredOption('--server <url>', "the Tower server's URL", process.env.TOWER_SERVER)
  .option(
    '--token <token>',
    'the registration token (TOWER_MINION_TOKEN on the server); needed only to register',
    process.env.TOWER_MINION_TOKEN,
  )
  .option('--name <name>', 'how the minion is shown', hostname())
  .option('--tags <tags>', `comma-separated tags (default: ${hostTags().join(',')})`)
  .option(
    '--trust <level>',
    'trusted, untrusted or restricted (default: what the registration token grants)',
  )
  .option('--jobs <labels>', 'restricted minions: the comma-separated job labels they accept')
  .option('--workdir <dir>', 'where checkouts, caches and the credential live', 'minion')
  .option('--concurrency <n>', 'jobs run at once', wholeNumber(1, 64), 1)
  .option(
    '--shutdown-grace <seconds>',
    'on SIGTERM, how long running jobs may finish before they are handed back',
    wholeNumber(0, 86_400),
    60,
  )
  .option('--keep-workspaces', "keep each run's workspace after it ends")
  .option(
    '--isolation <level>',
    'user: each job runs as a user of its own, and all it started ends with it (needs root); ' +
      'none: jobs run as this user and can read its credential',
    'user',
  )
  .option(
    '--run-uid <uid>',
    'with user isolation, the first of the uids jobs run as, one per --concurrency slot ' +
      '(default: one of 100,000 ranges above 2,000,000,000, chosen by the work directory)',
    wholeNumber(1000, 2_147_483_000),
  )
  .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
  .action(async (options: MinionOptions) => {
    const problems = [];
    if (!/^https?:\/\//.test(options.server)) {
      problems.push({ variable: '--server', problem: 'must be an http:// or https:// URL' });
    }
    if (options.tags !== undefined && !TAG_LIST.test(options.tags)) {
      problems.push({
        variable: '--tags',
        problem: 'must be comma-separated tags of lowercase letters, digits, ".", "_" or "-"',
      });
    }
    if (options.trust !== undefined && !minionTrusts.includes(options.trust as MinionTrust)) {
      problems.push({ variable: '--trust', problem: 'must be trusted, untrusted or restricted' });
    }
    if (options.trust === 'restricted' && options.jobs === undefined) {
      problems.push({ variable: '--jobs', problem: 'is required for a restricted minion' });
    }
    if (
      options.trust !== undefined &&
      options.trust !== 'restricted' &&
      options.jobs !== undefined
    ) {
      problems.push({ variable: '--jobs', problem: 'is only for a restricted minion' });
    }
    if (options.isolation !== 'user' && options.isolation !== 'none') {
      problems.push({ variable: '--isolation', problem: 'must be user or none' });
    }
    if (problems.length > 0) throw new ConfigError(problems);
    const logger = createLogger({ level: options.logLevel });
    const tags = options.tags?.split(',') ?? hostTags();
    const workdir = resolve(options.workdir);
    const agent = createMinionAgent({
      server: options.server.replace(/\/+$/, ''),
      workdir,
      name: options.name,
      concurrency: options.concurrency,
      logger,
      keepWorkspaces: options.keepWorkspaces ?? false,
      isolation:
        options.isolation === 'none'
          ? { kind: 'none' }
          : { kind: 'user', firstUid: options.runUid },
      register: (client) => {
        if (options.token === undefined) {
          throw new ConfigError([
            {
              variable: '--token',
              problem: `is needed to register: ${workdir} holds no credential for ${options.server}`,
            },
          ]);
        }
        return client.register(options.token, {
          name: options.name,
          tags,
          ...(options.trust === undefined ? {} : { trust: options.trust }),
          ...(options.jobs === undefined ? {} : { jobs: options.jobs.split(',') }),
        });
      },
    });
    let signals = 0;
    const shutdown = (signal: NodeJS.Signals) => {
      signals += 1;
      logger.info({ signal }, signals === 1 ? 'stopping' : 'handing back running jobs now');
      void agent.stop(signals === 1 ? options.shutdownGrace * 1000 : 0);
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
    await agent.start();
    await agent.stopped();
    logger.info('minion stopped');
  });
