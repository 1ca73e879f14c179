import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { ConfigError, errorMessage, type ConfigProblem } from '../lib/errors.js';
import type { LogLevel } from '../lib/logger.js';

export type Env = Record<string, string | undefined>;

const LogLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  error: 'must be one of fatal, error, warn, info, debug, trace, silent',
});

const HttpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .transform((url) => url.replace(/\/+$/, ''));

/** The environment Tower reads. Empty values count as unset. */
export const EnvSchema = z.object({
  TOWER_APP_ID: z
    .string()
    .regex(/^[1-9]\d*$/, { error: 'must be the GitHub App id, a positive whole number' })
    .optional(),
  TOWER_PRIVATE_KEY: z.string().optional(),
  TOWER_PRIVATE_KEY_PATH: z.string().optional(),
  TOWER_WEBHOOK_SECRET: z.string().optional(),
  TOWER_GITHUB_API_URL: HttpUrl.default('https://api.github.com'),
  DATABASE_URL: z
    .url({
      protocol: /^postgres(ql)?$/,
      error: 'must be a postgres:// or postgresql:// connection URL',
    })
    .optional(),
  TOWER_DATA_DIR: z.string().default('data'),
  TOWER_HOST: z.string().default('127.0.0.1'),
  TOWER_PORT: z.coerce
    .number({ error: 'must be a port number from 0 to 65535' })
    .int({ error: 'must be a port number from 0 to 65535' })
    .min(0, { error: 'must be a port number from 0 to 65535' })
    .max(65535, { error: 'must be a port number from 0 to 65535' })
    .default(3000),
  TOWER_PUBLIC_URL: HttpUrl.optional(),
  TOWER_LOG_LEVEL: LogLevelSchema.default('info'),
  TOWER_MINION_TOKEN: z
    .string()
    .min(16, { error: 'must be at least 16 characters: a long random secret' })
    .optional(),
  TOWER_LEASE_SECONDS: z.coerce
    .number({ error: 'must be a whole number of seconds from 10 to 600' })
    .int({ error: 'must be a whole number of seconds from 10 to 600' })
    .min(10, { error: 'must be a whole number of seconds from 10 to 600' })
    .max(600, { error: 'must be a whole number of seconds from 10 to 600' })
    .optional(),
  TOWER_SANDBOX: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true' || value === '1'),
  TOWER_EMBEDDED_MINION: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true' || value === '1'),
  TOWER_EMBEDDED_MINION_TAGS: z
    .string()
    .regex(/^[a-z0-9._-]+(,[a-z0-9._-]+)*$/, {
      error: 'must be comma-separated tags of lowercase letters, digits, ".", "_" or "-"',
    })
    .optional(),
  TOWER_EMBEDDED_MINION_CONCURRENCY: z.coerce
    .number({ error: 'must be a whole number from 1 to 64' })
    .int({ error: 'must be a whole number from 1 to 64' })
    .min(1, { error: 'must be a whole number from 1 to 64' })
    .max(64, { error: 'must be a whole number from 1 to 64' })
    .default(1),
});

export type GitHubAppConfig = {
  appId: number;
  privateKey: string;
  webhookSecret: string;
};

export type DatabaseConfig =
  { kind: 'pglite'; dataDir: string } | { kind: 'postgres'; url: string };

export type Config = {
  /** Base URL of GitHub's REST API: api.github.com, a GitHub Enterprise Server, or the simulator. */
  githubApiUrl: string;
  /** Absent when no GitHub App is configured: Tower serves, but takes no webhooks. */
  githubApp: GitHubAppConfig | undefined;
  database: DatabaseConfig;
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string;
  logLevel: LogLevel;
  /**
   * The registration token minions present to register; absent, registration
   * is refused. Optional so that configurations built in code may leave it out.
   */
  minionToken?: string | undefined;
  /** How long a claim's lease lasts before a heartbeat renews it (default 120 s). */
  leaseSeconds?: number | undefined;
  /**
   * The minion `tower serve` runs in its own process, claiming over its own
   * HTTP API; absent, none runs. Optional for configurations built in code.
   */
  embeddedMinion?: { tags: string[] | undefined; concurrency: number } | undefined;
  /**
   * Without a GitHub App, `tower serve` runs against the built-in GitHub
   * simulator with a demo repository (TOWER_SANDBOX=false leaves it out).
   */
  sandbox?: boolean;
};

export type LoadConfigOptions = {
  /** Reads the private key file; injectable for tests. */
  readFile?: (path: string) => string;
  /** Relative paths (data directory, key path) resolve against this. */
  cwd?: string;
};

/**
 * Reads Tower's configuration from an environment. Throws one ConfigError
 * that names every variable with a problem.
 */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): Config {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const cwd = options.cwd ?? process.cwd();
  const parsed = EnvSchema.safeParse(withoutEmptyValues(env));
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? 'environment'),
        problem: issue.message,
      })),
    );
  }
  const values = parsed.data;
  const problems: ConfigProblem[] = [];
  const githubApp = readGitHubApp(values, { readFile, cwd }, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const dataDir = resolve(cwd, values.TOWER_DATA_DIR);
  return {
    githubApiUrl: values.TOWER_GITHUB_API_URL,
    githubApp,
    database: values.DATABASE_URL
      ? { kind: 'postgres', url: values.DATABASE_URL }
      : { kind: 'pglite', dataDir },
    dataDir,
    host: values.TOWER_HOST,
    port: values.TOWER_PORT,
    publicUrl: values.TOWER_PUBLIC_URL ?? `http://localhost:${values.TOWER_PORT}`,
    logLevel: values.TOWER_LOG_LEVEL,
    minionToken: values.TOWER_MINION_TOKEN,
    leaseSeconds: values.TOWER_LEASE_SECONDS,
    sandbox: values.TOWER_SANDBOX,
    embeddedMinion: values.TOWER_EMBEDDED_MINION
      ? {
          tags: values.TOWER_EMBEDDED_MINION_TAGS?.split(','),
          concurrency: values.TOWER_EMBEDDED_MINION_CONCURRENCY,
        }
      : undefined,
  };
}

function readGitHubApp(
  values: z.infer<typeof EnvSchema>,
  { readFile, cwd }: Required<LoadConfigOptions>,
  problems: ConfigProblem[],
): GitHubAppConfig | undefined {
  const { TOWER_APP_ID, TOWER_PRIVATE_KEY, TOWER_PRIVATE_KEY_PATH, TOWER_WEBHOOK_SECRET } = values;
  const anySet = [TOWER_APP_ID, TOWER_PRIVATE_KEY, TOWER_PRIVATE_KEY_PATH, TOWER_WEBHOOK_SECRET];
  if (anySet.every((value) => value === undefined)) return undefined;

  const needed = 'is required when a GitHub App is configured';
  if (TOWER_APP_ID === undefined) problems.push({ variable: 'TOWER_APP_ID', problem: needed });
  if (TOWER_WEBHOOK_SECRET === undefined) {
    problems.push({ variable: 'TOWER_WEBHOOK_SECRET', problem: needed });
  }

  let privateKey: string | undefined;
  if (TOWER_PRIVATE_KEY !== undefined && TOWER_PRIVATE_KEY_PATH !== undefined) {
    problems.push({
      variable: 'TOWER_PRIVATE_KEY_PATH',
      problem: 'set either TOWER_PRIVATE_KEY or TOWER_PRIVATE_KEY_PATH, not both',
    });
  } else if (TOWER_PRIVATE_KEY !== undefined) {
    // Keys pasted into one-line environments often carry literal "\n".
    const pem = TOWER_PRIVATE_KEY.replace(/\\n/g, '\n');
    privateKey = checkPrivateKey('TOWER_PRIVATE_KEY', pem, undefined, problems);
  } else if (TOWER_PRIVATE_KEY_PATH !== undefined) {
    const path = resolve(cwd, TOWER_PRIVATE_KEY_PATH);
    let pem: string | undefined;
    try {
      pem = readFile(path);
    } catch (error) {
      problems.push({
        variable: 'TOWER_PRIVATE_KEY_PATH',
        problem: `cannot read ${path}: ${errorMessage(error)}`,
      });
    }
    if (pem !== undefined)
      privateKey = checkPrivateKey('TOWER_PRIVATE_KEY_PATH', pem, path, problems);
  } else {
    problems.push({
      variable: 'TOWER_PRIVATE_KEY',
      problem: `${needed} (or set TOWER_PRIVATE_KEY_PATH)`,
    });
  }

  if (TOWER_APP_ID === undefined || TOWER_WEBHOOK_SECRET === undefined || !privateKey) {
    return undefined;
  }
  return { appId: Number(TOWER_APP_ID), privateKey, webhookSecret: TOWER_WEBHOOK_SECRET };
}

function checkPrivateKey(
  variable: string,
  pem: string,
  path: string | undefined,
  problems: ConfigProblem[],
): string | undefined {
  try {
    createPrivateKey(pem);
    return pem;
  } catch {
    const where = path ? ` (${path})` : '';
    problems.push({
      variable,
      problem: `is not a PEM private key${where}; use the key GitHub generated for the app`,
    });
    return undefined;
  }
}

function withoutEmptyValues(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
}

/**
 * The process environment with an optional `.env` file beneath it: a
 * variable set in the environment wins over the file.
 */
export function environmentWithDotenv(env: Env, dotenvPath: string): Env {
  let fileValues: Env = {};
  try {
    fileValues = parseDotenv(readFileSync(dotenvPath));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError([
        { variable: '.env', problem: `cannot read ${dotenvPath}: ${errorMessage(error)}` },
      ]);
    }
  }
  return { ...fileValues, ...env };
}
