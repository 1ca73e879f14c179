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
    const tower = await startTower({ config, logger });
    let signals = 0;
    const shutdown = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(130);
      }
      logger.info({ signal }, 'signal received');
      tower.close().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  });

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
