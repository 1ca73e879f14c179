/**
 * The minion protocol's typed errors; src/web/app.ts maps each to its HTTP
 * status in one place.
 */
import { TowerError } from '../lib/errors.js';

/** A request body, parameter or header is not what the protocol expects; the message names it. */
export class InvalidRequestError extends TowerError {
  override readonly name = 'InvalidRequestError';
}

/** No credential, or one that no minion holds (or a wrong registration token). */
export class MinionUnauthorizedError extends TowerError {
  override readonly name = 'MinionUnauthorizedError';
}

/** The minion is known, but quarantined or retired. */
export class MinionForbiddenError extends TowerError {
  override readonly name = 'MinionForbiddenError';
  constructor(
    readonly minionId: number,
    readonly state: string,
  ) {
    super(`Minion ${minionId} is ${state} and may not take part in dispatch`);
  }
}

/**
 * The minion is quarantined (too many runs in a row ended with exception):
 * it may still heartbeat, log, upload and report its running runs, but its
 * claims are refused until an operator releases it.
 */
export class MinionQuarantinedError extends TowerError {
  override readonly name = 'MinionQuarantinedError';
  constructor(readonly minionId: number) {
    super(
      `Minion ${minionId} is quarantined: too many of its runs in a row ended with exception. ` +
        'It may still report the runs it has, but claims nothing until an operator checks ' +
        `the machine and releases it with \`tower minions release ${minionId}\``,
    );
  }
}

/** Registration needs TOWER_MINION_TOKEN, which is not set. */
export class RegistrationDisabledError extends TowerError {
  override readonly name = 'RegistrationDisabledError';
}

/**
 * The run is not this minion's running run. `stop`: the minion should stop
 * working on it (a heartbeat's answer); `conflict`: the request is refused.
 */
export class RunConflictError extends TowerError {
  override readonly name = 'RunConflictError';
  constructor(
    readonly code: 'stop' | 'conflict',
    readonly runId: number,
    message: string,
  ) {
    super(message);
  }
}

/** No such graph, run, artifact or manifest. */
export class NotFoundError extends TowerError {
  override readonly name = 'NotFoundError';
}

/** A body over its limit (artifacts: 100 MiB). */
export class PayloadTooLargeError extends TowerError {
  override readonly name = 'PayloadTooLargeError';
}

/** The registration token does not grant what the minion asked for (more trust than it carries). */
export class RegistrationForbiddenError extends TowerError {
  override readonly name = 'RegistrationForbiddenError';
}

/** A client holds as many of something open as it may (log followers, waiting claims). */
export class TooManyRequestsError extends TowerError {
  override readonly name = 'TooManyRequestsError';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** Tower is shutting down: the request is worth retrying shortly, here or at another replica. */
export class ShuttingDownError extends TowerError {
  override readonly name = 'ShuttingDownError';
  readonly retryAfterSeconds = 5;
}
