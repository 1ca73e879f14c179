/**
 * Tower's typed errors. Domain code throws these; only `web/` maps them to
 * HTTP responses, and only the command line maps them to exit codes.
 */
export class TowerError extends Error {
  override readonly name: string = 'TowerError';
}

export type ConfigProblem = { variable: string; problem: string };

/** Configuration values are missing or wrong; each problem names its variable. */
export class ConfigError extends TowerError {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`,
    );
  }
}

/** A webhook failed signature verification or is not a GitHub webhook. */
export class WebhookRejectedError extends TowerError {
  override readonly name = 'WebhookRejectedError';
  constructor(
    message: string,
    readonly status: 400 | 401 | 413,
  ) {
    super(message);
  }
}

/** A feature needs the GitHub App, which is not configured. */
export class NotConfiguredError extends TowerError {
  override readonly name = 'NotConfiguredError';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
