import type { Config } from '../../src/config/config.js';

/** A configuration for in-process tests and benchmarks, which never listen or open by path. */
export function inProcessConfig(githubApp: Config['githubApp']): Config {
  return {
    githubApiUrl: 'http://127.0.0.1:9',
    githubApp,
    database: { kind: 'pglite', dataDir: '/unused' },
    dataDir: '/unused',
    host: '127.0.0.1',
    port: 0,
    publicUrl: 'http://localhost',
    logLevel: 'silent',
  };
}
