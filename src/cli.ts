/**
 * Tower's command line: `tower serve`, `tower migrate`.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { environmentWithDotenv, loadConfig, type Config } from './config/config.js';
import { ConfigError, TowerError, errorMessage } from './lib/errors.js';
import { createLogger, type Logger } from './lib/logger.js';
import { version } from './lib/version.js';
import { openMigratedDatabase, startTower } from './main.js';
import {
  graphCheckCommand,
  graphCommand,
  graphTestCommand,
  initCommand,
  schemaCommand,
  type GraphOptions,
  type Output,
} from './cli/graph-commands.js';
import { startDemoSandbox, type SandboxOptions } from './sandbox/demo.js';
import { minionCommand } from './cli/minion-command.js';
import { minionsCommand } from './cli/minion-admin.js';
import { startSandboxTower } from './cli/sandbox-start.js';
import { tokensCommand } from './cli/tokens.js';

function configure(): { config: Config; logger: Logger } {
  const env = environmentWithDotenv(process.env, resolve('.env'));
  const config = loadConfig(env);
  return { config, logger: createLogger({ level: config.logLevel }) };
}

const program = new Command()
  .name('tower')
  .description('Tower: CI as dependency graphs, and a landing queue that lands what it tested')
  .version(version);

program
  .command('serve')
  .description('Run the Tower server: API, webhooks and processing')
  .action(async () => {
    const { config, logger } = configure();
    // Handlers first: a signal during start-up still shuts down cleanly once started.
    const starting =
      !config.githubApp && config.sandbox !== false
        ? startSandboxTower({ config, logger })
        : startTower({ config, logger });
    let signals = 0;
    const shutdown = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(130);
      }
      logger.info({ signal }, 'signal received');
      starting
        .then((tower) => tower.close())
        .then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
    await starting;
  });

program
  .command('sandbox-github')
  .description('Run the GitHub simulator with a demo app, installation and repository')
  .option('--port <port>', 'port to listen on', '4010')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--data-dir <dir>', 'where the simulated repositories live', 'data/sandbox-github')
  .option(
    '--webhook-url <url>',
    "where the demo app's webhooks go (a Tower's /api/github/webhooks)",
  )
  .option('--webhook-secret <secret>', "the demo app's webhook secret", 'sandbox-webhook-secret')
  .action(async (options: SandboxOptions) => {
    const port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError([
        { variable: '--port', problem: 'must be a port number from 0 to 65535' },
      ]);
    }
    const sandbox = await startDemoSandbox({ ...options, port, dataDir: resolve(options.dataDir) });
    process.stdout.write(sandbox.banner);
    const stop = () => {
      void sandbox.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });

const io: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};
const exitWith = (code: number) => {
  process.exitCode = code;
};

const graph = program
  .command('graph')
  .description('Print the graphs an event builds from the .tower/ definitions of a checkout')
  .argument('[dir]', 'the checkout', '.')
  .option('--event <type>', 'push, pull_request, land, cron, trigger or api', 'push')
  .option('--branch <branch>', "the branch (default: the checkout's current branch)")
  .option('--sha <sha>', "the commit (default: the checkout's HEAD)")
  .option(
    '--changed-files <file>',
    'a file listing changed paths, one a line ("-" for standard input)',
  )
  .option('--graph <name>', 'only this graph')
  .option('--format <format>', 'json, dot or text', 'text')
  .action(async (dir: string, options: GraphOptions) =>
    exitWith(await graphCommand(resolve(dir), options, io)),
  );

graph
  .command('check')
  .description('Validate .tower/: every error as file:line:col, exit 1 if any')
  .argument('[dir]', 'the checkout', '.')
  .action(async (dir: string) => exitWith(await graphCheckCommand(resolve(dir), io)));

graph
  .command('test')
  .description('Run the graph assertion files in .tower/tests/')
  .argument('[dir]', 'the checkout', '.')
  .action(async (dir: string) => exitWith(await graphTestCommand(resolve(dir), io)));

program
  .command('init')
  .description('Write a starter .tower/ into a checkout')
  .argument('[dir]', 'the checkout', '.')
  .action(async (dir: string) => exitWith(await initCommand(resolve(dir), io)));

program
  .command('schema')
  .description('Print the JSON Schema of the .tower/ format, for editors')
  .option('--tests', 'the schema of graph assertion files (.tower/tests/*.yml) instead')
  .action((options: { tests?: boolean }) => exitWith(schemaCommand(io, options)));

program.addCommand(minionCommand);

program.addCommand(
  minionsCommand(() => {
    const { config, logger } = configure();
    return openMigratedDatabase(config, logger);
  }, io),
);

program.addCommand(
  tokensCommand(() => {
    const { config, logger } = configure();
    return openMigratedDatabase(config, logger);
  }, io),
);

program
  .command('migrate')
  .description('Apply database migrations and exit')
  .action(async () => {
    const { config, logger } = configure();
    const database = await openMigratedDatabase(config, logger);
    await database.close();
  });

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`tower: ${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(
    error instanceof TowerError
      ? `tower: ${error.message}\n`
      : `tower: ${errorMessage(error)}\n${String((error as Error).stack ?? '')}\n`,
  );
  process.exit(1);
});
