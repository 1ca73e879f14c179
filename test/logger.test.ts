/**
 * Logs are shipped and shared: no secret Tower holds may reach a log line,
 * wherever in the line's fields it sits.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

describe('the logger', () => {
  it('writes secrets as [redacted]: tokens, credentials, keys, authorization headers and cookies', () => {
    const { logger, lines } = capture();
    logger.child({ component: 'minion' }).info(
      {
        token: 'ghs_installation_token',
        registration: { credential: 'tmc_secret_credential' },
        app: { privateKey: '-----BEGIN RSA PRIVATE KEY-----', webhookSecret: 'hook-secret' },
        err: {
          message: 'Bad credentials',
          request: { headers: { authorization: 'token ghs_leaked', accept: 'application/json' } },
        },
        headers: { cookie: 'tower_session=sealed', 'x-hub-signature-256': 'sha256=abc' },
        runId: 42,
      },
      'something happened',
    );
    const line = lines.join('');
    for (const secret of [
      'ghs_installation_token',
      'tmc_secret_credential',
      'BEGIN RSA PRIVATE KEY',
      'hook-secret',
      'ghs_leaked',
      'tower_session=sealed',
      'sha256=abc',
    ]) {
      expect(line).not.toContain(secret);
    }
    const fields = JSON.parse(line) as Record<string, unknown>;
    expect(fields).toMatchObject({
      token: '[redacted]',
      registration: { credential: '[redacted]' },
      err: { request: { headers: { authorization: '[redacted]', accept: 'application/json' } } },
      runId: 42,
      msg: 'something happened',
    });
  });
});
