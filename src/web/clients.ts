/** Who a request comes from, for per-client limits (log followers). */
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';

/**
 * The client's remote address; `unknown` when the request did not come
 * through a socket (in-process requests), so all of those share one
 * allowance. Behind a proxy, every client shares the proxy's address.
 */
export function clientOf(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
