import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { ConfigError, errorMessage, type ConfigProblem } from '../lib/errors.js';
import { parseHostAllowList, type HostAllowList } from '../lib/ip-ranges.js';
import type { LogLevel } from '../lib/logger.js';

export type Env = Record<string, string | undefined>;

const LogLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  error: 'must be one of fatal, error, warn, info, debug, trace, silent',
});

const HttpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .transform((url) => url.replace(/\/+$/, ''));

const RegistrationToken = z
  .string()
  .min(16, { error: 'must be at least 16 characters: a long random secret' })
  .optional();

/** The environment Tower reads. Empty values count as unset. */
export const EnvSchema = z.object({
  TOWER_APP_ID: z
    .string()
    .regex(/^[1-9]\d*$/, { error: 'must be the GitHub App id, a positive whole number' })
    .optional(),
  TOWER_PRIVATE_KEY: z.string().optional(),
  TOWER_PRIVATE_KEY_PATH: z.string().optional(),
  TOWER_WEBHOOK_SECRET: z
    .string()
    .min(16, {
      error: 'must be at least 16 characters: the long random secret set on the GitHub App',
    })
    .optional(),
  TOWER_GITHUB_API_URL: HttpUrl.default('https://api.github.com'),
  TOWER_GITHUB_URL: HttpUrl.default('https://github.com'),
  TOWER_GITHUB_CLIENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, {
      error: "must be the GitHub App's client ID (letters, digits, '.', '_' or '-')",
    })
    .optional(),
  TOWER_GITHUB_CLIENT_SECRET: z
    .string()
    .min(16, { error: "must be the GitHub App's client secret (at least 16 characters)" })
    .max(200, { error: "must be the GitHub App's client secret (at most 200 characters)" })
    .optional(),
  TOWER_SESSION_SECRET: z
    .string()
    .min(32, { error: 'must be at least 32 characters: a long random secret' })
    .optional(),
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
  TOWER_MINION_TOKEN: RegistrationToken,
  TOWER_MINION_TOKEN_UNTRUSTED: RegistrationToken,
  TOWER_MINION_TOKEN_RESTRICTED: RegistrationToken,
  TOWER_LEASE_SECONDS: z.coerce
    .number({ error: 'must be a whole number of seconds from 10 to 600' })
    .int({ error: 'must be a whole number of seconds from 10 to 600' })
    .min(10, { error: 'must be a whole number of seconds from 10 to 600' })
    .max(600, { error: 'must be a whole number of seconds from 10 to 600' })
    .optional(),
  TOWER_LOG_MAX_BYTES: z.coerce
    .number({ error: 'must be a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)' })
    .int({ error: 'must be a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)' })
    .min(1024 * 1024, {
      error: 'must be a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)',
    })
    .max(1024 * 1024 * 1024, {
      error: 'must be a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)',
    })
    .default(64 * 1024 * 1024),
  TOWER_SANDBOX: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .default('true')
    .transform((value) => value === 'true' || value === '1'),
  /** Unset: on without a GitHub App (the demo), off with one. */
  TOWER_EMBEDDED_MINION: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .transform((value) => value === 'true' || value === '1')
    .optional(),
  TOWER_EMBEDDED_MINION_ISOLATION: z
    .enum(['user', 'none'], { error: 'must be user or none' })
    .optional(),
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
  TOWER_NOTIFY_ALLOW_HOSTS: z
    .string()
    .transform((text, ctx) => {
      const parsed = parseHostAllowList(text);
      if (parsed.ok) return parsed.list;
      ctx.addIssue({
        code: 'custom',
        message: `must be comma-separated host names, IP addresses or CIDR ranges: ${parsed.problem}`,
      });
      return z.NEVER;
    })
    .optional(),
  TOWER_NOTIFY_SECRET: z
    .string()
    .min(16, { error: 'must be at least 16 characters: a long random secret' })
    .optional(),
});

export type GitHubAppConfig = {
  appId: number;
  privateKey: string;
  webhookSecret: string;
};

/** Signing in with GitHub: the GitHub App's OAuth client (its user authorization). */
export type SignInConfig = {
  clientId: string;
  clientSecret: string;
  /** GitHub's web address (github.com, a GitHub Enterprise Server, or the simulator). */
  githubUrl: string;
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
   * The registration tokens minions present to register, one per trust level
   * it grants (TOWER_MINION_TOKEN: trusted; _UNTRUSTED; _RESTRICTED); with
   * none, registration is refused. Optional for configurations built in code.
   */
  minionTokens?: { trusted?: string; untrusted?: string; restricted?: string };
  /** How long a claim's lease lasts before a heartbeat renews it (default 120 s). */
  leaseSeconds?: number | undefined;
  /** The most log a run may store, in bytes (default 64 MiB); appends past it get 413. */
  logMaxBytes?: number | undefined;
  /**
   * The minion `tower serve` runs in its own process, claiming over its own
   * HTTP API; absent, none runs. Optional for configurations built in code.
   */
  embeddedMinion?:
    | {
        tags: string[] | undefined;
        concurrency: number;
        /**
         * How its jobs are kept from the server (src/minions/isolation.ts):
         * `user` always with a GitHub App; unset, `user` where the server
         * runs as root, else `none` (the demo on a laptop).
         */
        isolation?: 'user' | 'none';
      }
    | undefined;
  /**
   * Without a GitHub App, `tower serve` runs against the built-in GitHub
   * simulator with a demo repository (TOWER_SANDBOX=false leaves it out).
   */
  sandbox?: boolean;
  /** Absent: nobody signs in; public repositories and API token holders still read. */
  signIn?: SignInConfig | undefined;
  /** Seals session cookies; absent, a key kept in the data directory (mode 0600) is used. */
  sessionSecret?: string | undefined;
  /** Internal hosts and ranges notify webhooks may reach; absent, only public addresses. */
  notifyAllowHosts?: HostAllowList | undefined;
  /** Signs notify webhook calls (X-Tower-Signature-256); absent, they are not signed. */
  notifySecret?: string | undefined;
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
  const signIn = readSignIn(values, problems);
  const tokens = minionTokens(values, problems);
  if (githubApp && values.TOWER_EMBEDDED_MINION_ISOLATION === 'none') {
    problems.push({
      variable: 'TOWER_EMBEDDED_MINION_ISOLATION',
      problem:
        "must be user with a GitHub App configured: with none, any job could read the server's key, secrets and database",
    });
  }
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
    minionTokens: tokens,
    leaseSeconds: values.TOWER_LEASE_SECONDS,
    logMaxBytes: values.TOWER_LOG_MAX_BYTES,
    sandbox: values.TOWER_SANDBOX,
    signIn,
    sessionSecret: values.TOWER_SESSION_SECRET,
    notifyAllowHosts: values.TOWER_NOTIFY_ALLOW_HOSTS,
    notifySecret: values.TOWER_NOTIFY_SECRET,
    // With a GitHub App, real repositories' jobs would run beside the server's
    // secrets: the embedded minion is off unless asked for, and isolated.
    embeddedMinion:
      (values.TOWER_EMBEDDED_MINION ?? githubApp === undefined)
        ? {
            tags: values.TOWER_EMBEDDED_MINION_TAGS?.split(','),
            concurrency: values.TOWER_EMBEDDED_MINION_CONCURRENCY,
            ...(githubApp
              ? { isolation: 'user' as const }
              : values.TOWER_EMBEDDED_MINION_ISOLATION
                ? { isolation: values.TOWER_EMBEDDED_MINION_ISOLATION }
                : {}),
          }
        : undefined,
  };
}

/** Each trust level's registration token; one token granting two levels would be ambiguous. */
function minionTokens(
  values: z.infer<typeof EnvSchema>,
  problems: ConfigProblem[],
): NonNullable<Config['minionTokens']> {
  const tokens = {
    trusted: values.TOWER_MINION_TOKEN,
    untrusted: values.TOWER_MINION_TOKEN_UNTRUSTED,
    restricted: values.TOWER_MINION_TOKEN_RESTRICTED,
  };
  const variables = {
    trusted: 'TOWER_MINION_TOKEN',
    untrusted: 'TOWER_MINION_TOKEN_UNTRUSTED',
    restricted: 'TOWER_MINION_TOKEN_RESTRICTED',
  } as const;
  const seen = new Map<string, string>();
  for (const trust of ['trusted', 'untrusted', 'restricted'] as const) {
    const token = tokens[trust];
    if (token === undefined) continue;
    const other = seen.get(token);
    if (other) {
      problems.push({
        variable: variables[trust],
        problem: `must differ from ${other}: each registration token grants one trust level`,
      });
    }
    seen.set(token, variables[trust]);
  }
  return Object.fromEntries(Object.entries(tokens).filter(([, token]) => token !== undefined));
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

function readSignIn(
  values: z.infer<typeof EnvSchema>,
  problems: ConfigProblem[],
): SignInConfig | undefined {
  const { TOWER_GITHUB_CLIENT_ID: clientId, TOWER_GITHUB_CLIENT_SECRET: clientSecret } = values;
  if (clientId === undefined && clientSecret === undefined) return undefined;
  if (clientId === undefined || clientSecret === undefined) {
    problems.push({
      variable: clientId === undefined ? 'TOWER_GITHUB_CLIENT_ID' : 'TOWER_GITHUB_CLIENT_SECRET',
      problem:
        'is required for signing in with GitHub: set both TOWER_GITHUB_CLIENT_ID and ' +
        "TOWER_GITHUB_CLIENT_SECRET (the GitHub App's client ID and a client secret), or neither",
    });
    return undefined;
  }
  return { clientId, clientSecret, githubUrl: values.TOWER_GITHUB_URL };
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
