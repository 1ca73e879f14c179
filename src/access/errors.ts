/** Access's typed errors; src/web/app.ts maps each to its HTTP status. */
import { TowerError } from '../lib/errors.js';

/** No credential where one is needed, or one Tower does not know (401). */
export class UnauthenticatedError extends TowerError {
  override readonly name = 'UnauthenticatedError';
}

/** A known credential that does not reach what was asked (403): operator routes only. */
export class ForbiddenError extends TowerError {
  override readonly name = 'ForbiddenError';
}

/** A state-changing page request without its session's CSRF token, or from another site (403). */
export class CsrfError extends TowerError {
  override readonly name = 'CsrfError';
}

/** Signing in failed: GitHub refused the code, or the state did not match (400). */
export class SignInError extends TowerError {
  override readonly name = 'SignInError';
}

/** GitHub could not say whether the person may read a repository (502): nothing is shown. */
export class AccessCheckFailedError extends TowerError {
  override readonly name = 'AccessCheckFailedError';
}
