import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { environmentWithDotenv, loadConfig, type Env } from '../src/config/config.js';
import { ConfigError } from '../src/lib/errors.js';
import { generateAppKey } from './support/github-app.js';

const key = generateAppKey();
const cwd = '/srv/tower';
const secret = 'webhook-secret-0123456789';

function problems(env: Env, readFile?: (path: string) => string) {
  try {
    loadConfig(env, { cwd, ...(readFile ? { readFile } : {}) });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs on embedded defaults with an empty environment', () => {
    expect(loadConfig({}, { cwd })).toEqual({
      githubApiUrl: 'https://api.github.com',
      githubApp: undefined,
      database: { kind: 'pglite', dataDir: '/srv/tower/data' },
      dataDir: '/srv/tower/data',
      host: '127.0.0.1',
      port: 3000,
      publicUrl: 'http://localhost:3000',
      logLevel: 'info',
      sandbox: true,
      embeddedMinion: { tags: undefined, concurrency: 1 },
      minionTokens: {},
      logMaxBytes: 64 * 1024 * 1024,
    });
  });

  it('reads every setting', () => {
    const config = loadConfig(
      {
        TOWER_APP_ID: '1234',
        TOWER_PRIVATE_KEY: key.replace(/\n/g, '\\n'),
        TOWER_WEBHOOK_SECRET: 'a-long-random-webhook-secret',
        TOWER_GITHUB_API_URL: 'https://ghe.example.com/api/v3/',
        DATABASE_URL: 'postgres://tower@db:5432/tower',
        TOWER_DATA_DIR: '/var/lib/tower',
        TOWER_HOST: '0.0.0.0',
        TOWER_PORT: '8080',
        TOWER_PUBLIC_URL: 'https://tower.example.com',
        TOWER_LOG_LEVEL: 'debug',
        TOWER_MINION_TOKEN: 'registration-token-0123456789',
        TOWER_EMBEDDED_MINION: 'false',
        TOWER_LEASE_SECONDS: '30',
        TOWER_LOG_MAX_BYTES: '1048576',
        TOWER_SANDBOX: 'false',
      },
      { cwd },
    );
    expect(config).toEqual({
      githubApiUrl: 'https://ghe.example.com/api/v3',
      githubApp: { appId: 1234, privateKey: key, webhookSecret: 'a-long-random-webhook-secret' },
      database: { kind: 'postgres', url: 'postgres://tower@db:5432/tower' },
      dataDir: '/var/lib/tower',
      host: '0.0.0.0',
      port: 8080,
      publicUrl: 'https://tower.example.com',
      logLevel: 'debug',
      minionTokens: { trusted: 'registration-token-0123456789' },
      leaseSeconds: 30,
      logMaxBytes: 1048576,
      sandbox: false,
      embeddedMinion: undefined,
    });
  });

  it("reads the embedded minion's tags and concurrency", () => {
    const config = loadConfig(
      { TOWER_EMBEDDED_MINION_TAGS: 'linux,gpu', TOWER_EMBEDDED_MINION_CONCURRENCY: '4' },
      { cwd },
    );
    expect(config.embeddedMinion).toEqual({ tags: ['linux', 'gpu'], concurrency: 4 });
  });

  it('leaves the embedded minion out when a GitHub App is configured, and isolates it when asked for', () => {
    const app = { TOWER_APP_ID: '1', TOWER_PRIVATE_KEY: key, TOWER_WEBHOOK_SECRET: secret };
    expect(loadConfig(app, { cwd }).embeddedMinion).toBeUndefined();
    expect(loadConfig({ ...app, TOWER_EMBEDDED_MINION: 'true' }, { cwd }).embeddedMinion).toEqual({
      tags: undefined,
      concurrency: 1,
      isolation: 'user',
    });
    expect(() =>
      loadConfig(
        { ...app, TOWER_EMBEDDED_MINION: 'true', TOWER_EMBEDDED_MINION_ISOLATION: 'none' },
        { cwd },
      ),
    ).toThrow(/TOWER_EMBEDDED_MINION_ISOLATION: must be user with a GitHub App configured/);
    // The demo, without a GitHub App: on, isolated where the machine allows.
    expect(loadConfig({}, { cwd }).embeddedMinion).toEqual({ tags: undefined, concurrency: 1 });
  });

  it('reads a registration token per trust level, each different', () => {
    const tokens = {
      TOWER_MINION_TOKEN: 'trusted-token-0123456789',
      TOWER_MINION_TOKEN_UNTRUSTED: 'untrusted-token-0123456789',
      TOWER_MINION_TOKEN_RESTRICTED: 'restricted-token-0123456789',
    };
    expect(loadConfig(tokens, { cwd }).minionTokens).toEqual({
      trusted: 'trusted-token-0123456789',
      untrusted: 'untrusted-token-0123456789',
      restricted: 'restricted-token-0123456789',
    });
    expect(() =>
      loadConfig({ ...tokens, TOWER_MINION_TOKEN_RESTRICTED: 'trusted-token-0123456789' }, { cwd }),
    ).toThrow(
      /TOWER_MINION_TOKEN_RESTRICTED: must differ from TOWER_MINION_TOKEN: each registration token grants one trust level/,
    );
  });

  it('reads the private key from a file, relative to the working directory', () => {
    const config = loadConfig(
      { TOWER_APP_ID: '1', TOWER_PRIVATE_KEY_PATH: 'keys/app.pem', TOWER_WEBHOOK_SECRET: secret },
      { cwd, readFile: (path) => (path === '/srv/tower/keys/app.pem' ? key : '') },
    );
    expect(config.githubApp?.privateKey).toBe(key);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ TOWER_PORT: '', DATABASE_URL: '', TOWER_APP_ID: '' }, { cwd }).port).toBe(
      3000,
    );
  });

  it.each([
    ['TOWER_PORT', 'abc', 'must be a port number from 0 to 65535'],
    ['TOWER_PORT', '70000', 'must be a port number from 0 to 65535'],
    ['TOWER_PORT', '80.5', 'must be a port number from 0 to 65535'],
    ['TOWER_LOG_LEVEL', 'loud', 'must be one of fatal, error, warn, info, debug, trace, silent'],
    ['DATABASE_URL', 'mysql://db/tower', 'must be a postgres:// or postgresql:// connection URL'],
    ['TOWER_GITHUB_API_URL', 'ftp://github', 'must be an http:// or https:// URL'],
    ['TOWER_PUBLIC_URL', 'not a url', 'must be an http:// or https:// URL'],
    ['TOWER_MINION_TOKEN', 'short', 'must be at least 16 characters: a long random secret'],
    [
      'TOWER_WEBHOOK_SECRET',
      'sandbox-secret',
      'must be at least 16 characters: the long random secret set on the GitHub App',
    ],
    ['TOWER_EMBEDDED_MINION', 'yes', 'must be true or false'],
    ['TOWER_LEASE_SECONDS', '5', 'must be a whole number of seconds from 10 to 600'],
    [
      'TOWER_LOG_MAX_BYTES',
      '1000',
      'must be a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)',
    ],
    [
      'TOWER_EMBEDDED_MINION_TAGS',
      'Linux, GPU',
      'must be comma-separated tags of lowercase letters, digits, ".", "_" or "-"',
    ],
    ['TOWER_EMBEDDED_MINION_CONCURRENCY', '0', 'must be a whole number from 1 to 64'],
  ])('names %s when it is %j', (variable, value, problem) => {
    expect(problems({ [variable]: value })).toEqual([{ variable, problem }]);
  });

  it('names every missing GitHub App setting once any is set', () => {
    expect(problems({ TOWER_WEBHOOK_SECRET: secret })).toEqual([
      { variable: 'TOWER_APP_ID', problem: 'is required when a GitHub App is configured' },
      {
        variable: 'TOWER_PRIVATE_KEY',
        problem: 'is required when a GitHub App is configured (or set TOWER_PRIVATE_KEY_PATH)',
      },
    ]);
    expect(problems({ TOWER_APP_ID: '1', TOWER_PRIVATE_KEY: key })).toEqual([
      { variable: 'TOWER_WEBHOOK_SECRET', problem: 'is required when a GitHub App is configured' },
    ]);
    expect(
      problems({ TOWER_APP_ID: 'app', TOWER_PRIVATE_KEY: key, TOWER_WEBHOOK_SECRET: secret }),
    ).toEqual([
      { variable: 'TOWER_APP_ID', problem: 'must be the GitHub App id, a positive whole number' },
    ]);
  });

  it('refuses a private key that is not one, or a key file it cannot read', () => {
    const base = { TOWER_APP_ID: '1', TOWER_WEBHOOK_SECRET: secret };
    expect(problems({ ...base, TOWER_PRIVATE_KEY: 'hello' })).toEqual([
      {
        variable: 'TOWER_PRIVATE_KEY',
        problem: 'is not a PEM private key; use the key GitHub generated for the app',
      },
    ]);
    expect(
      problems({ ...base, TOWER_PRIVATE_KEY_PATH: '/nope.pem' }, () => {
        throw new Error('ENOENT: no such file');
      }),
    ).toEqual([
      {
        variable: 'TOWER_PRIVATE_KEY_PATH',
        problem: 'cannot read /nope.pem: ENOENT: no such file',
      },
    ]);
    expect(problems({ ...base, TOWER_PRIVATE_KEY_PATH: '/bad.pem' }, () => 'garbage')).toEqual([
      {
        variable: 'TOWER_PRIVATE_KEY_PATH',
        problem: 'is not a PEM private key (/bad.pem); use the key GitHub generated for the app',
      },
    ]);
    expect(problems({ ...base, TOWER_PRIVATE_KEY: key, TOWER_PRIVATE_KEY_PATH: '/k.pem' })).toEqual(
      [
        {
          variable: 'TOWER_PRIVATE_KEY_PATH',
          problem: 'set either TOWER_PRIVATE_KEY or TOWER_PRIVATE_KEY_PATH, not both',
        },
      ],
    );
  });

  it('says what is wrong in one message naming each variable', () => {
    expect(() => loadConfig({ TOWER_PORT: 'x', TOWER_LOG_LEVEL: 'y' }, { cwd })).toThrow(
      'Invalid configuration:\n' +
        '  TOWER_PORT: must be a port number from 0 to 65535\n' +
        '  TOWER_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
    );
  });
});

describe('environmentWithDotenv', () => {
  it('puts a .env file beneath the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tower-env-'));
    await writeFile(join(dir, '.env'), 'TOWER_PORT=4000\nTOWER_LOG_LEVEL=debug\n');
    expect(environmentWithDotenv({ TOWER_PORT: '5000' }, join(dir, '.env'))).toEqual({
      TOWER_PORT: '5000',
      TOWER_LOG_LEVEL: 'debug',
    });
  });

  it('is the environment alone without a .env file', () => {
    expect(environmentWithDotenv({ A: '1' }, '/nonexistent/.env')).toEqual({ A: '1' });
  });

  it('names the file it cannot read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tower-env-'));
    expect(() => environmentWithDotenv({}, dir)).toThrow(ConfigError);
  });
});

describe('sign-in settings', () => {
  it("reads the GitHub App's OAuth client, GitHub's web address and the session secret", () => {
    const config = loadConfig(
      {
        TOWER_GITHUB_CLIENT_ID: 'Iv23li0123456789abcd',
        TOWER_GITHUB_CLIENT_SECRET: '0123456789abcdef0123456789abcdef01234567',
        TOWER_GITHUB_URL: 'https://ghe.example.com/',
        TOWER_SESSION_SECRET: 's'.repeat(32),
      },
      { cwd },
    );
    expect(config.signIn).toEqual({
      clientId: 'Iv23li0123456789abcd',
      clientSecret: '0123456789abcdef0123456789abcdef01234567',
      githubUrl: 'https://ghe.example.com',
    });
    expect(config.sessionSecret).toBe('s'.repeat(32));
    expect(loadConfig({}, { cwd }).signIn).toBeUndefined();
  });

  it('names the missing half of the OAuth client, and a short session secret', () => {
    expect(problems({ TOWER_GITHUB_CLIENT_ID: 'Iv23li0123456789abcd' })).toEqual([
      {
        variable: 'TOWER_GITHUB_CLIENT_SECRET',
        problem: expect.stringContaining(
          'set both TOWER_GITHUB_CLIENT_ID and TOWER_GITHUB_CLIENT_SECRET',
        ),
      },
    ]);
    expect(problems({ TOWER_SESSION_SECRET: 'short' })).toEqual([
      {
        variable: 'TOWER_SESSION_SECRET',
        problem: 'must be at least 32 characters: a long random secret',
      },
    ]);
  });
});
