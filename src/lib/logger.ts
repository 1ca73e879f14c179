import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export type LogLevel = LevelWithSilent;

export type LoggerOptions = {
  level: LogLevel;
  /** Where lines go; standard output by default. */
  destination?: NodeJS.WritableStream;
};

/** JSON lines, one logger per process; modules take a child. */
export function createLogger({ level, destination }: LoggerOptions): Logger {
  return pino({ level, base: { service: 'tower' } }, destination ?? process.stdout);
}
