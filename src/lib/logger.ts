import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export type LogLevel = LevelWithSilent;

export type LoggerOptions = {
  level: LogLevel;
  /** Where lines go; standard output by default. */
  destination?: NodeJS.WritableStream;
};

/**
 * Fields that hold secrets, wherever a log line carries them (a request's
 * headers, an Octokit error's request, a registration, a configuration):
 * they are written as `[redacted]`, so that logs can be shipped and shared.
 */
const SECRET_FIELDS = [
  'token',
  'credential',
  'privateKey',
  'secret',
  'webhookSecret',
  'clientSecret',
  'sessionSecret',
  'password',
  'authorization',
  'cookie',
];
const REDACTED_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
  ...['authorization', 'cookie', 'x-hub-signature-256'].flatMap((header) => [
    `headers["${header}"]`,
    `*.headers["${header}"]`,
    `*.*.headers["${header}"]`,
  ]),
];

/** JSON lines, one logger per process; modules take a child. */
export function createLogger({ level, destination }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: { service: 'tower' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination ?? process.stdout,
  );
}
