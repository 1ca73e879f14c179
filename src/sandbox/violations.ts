/**
 * What the simulator refused or could not do as GitHub would. Tests fail on
 * any entry: Tower must never send what GitHub would refuse, and the
 * simulator must never answer what GitHub would not.
 */
export type Violation = {
  kind:
    | 'unknown-route'
    | 'not-simulated'
    | 'invalid-request'
    | 'invalid-response'
    | 'invalid-webhook'
    | 'webhook-delivery-failed';
  /** e.g. "POST /repos/{owner}/{repo}/check-runs", or the webhook event */
  where: string;
  message: string;
};

export class ViolationLog {
  readonly #entries: Violation[] = [];

  record(violation: Violation): void {
    this.#entries.push(violation);
  }

  /** Everything recorded so far. */
  list(): readonly Violation[] {
    return this.#entries;
  }

  /** Takes the entries out, for a test that provoked them on purpose. */
  take(): Violation[] {
    return this.#entries.splice(0);
  }
}
