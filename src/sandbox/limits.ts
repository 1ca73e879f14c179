/**
 * GitHub's rate limits, answered as GitHub answers them: the primary limit
 * (requests an hour, reported in x-ratelimit-* headers) and the secondary
 * limit on content-creating requests (80 a minute, 500 an hour per
 * installation), refused with 403 and `retry-after`.
 */

export type LimitSettings = {
  /** Primary: requests an hour per installation. */
  requestsPerHour: number;
  contentPerMinute: number;
  contentPerHour: number;
};

export const githubLimits: LimitSettings = {
  requestsPerHour: 5000,
  contentPerMinute: 80,
  contentPerHour: 500,
};

export type LimitVerdict =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; headers: Record<string, string>; message: string; documentationUrl: string };

type Bucket = { hourStart: number; used: number; contentTimes: number[] };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  constructor(readonly settings: LimitSettings = githubLimits) {}

  /** Counts one request by `key` (an installation, an app) and says whether it may proceed. */
  take(key: string, now: Date, contentCreating: boolean): LimitVerdict {
    const t = now.getTime();
    let bucket = this.#buckets.get(key);
    if (!bucket || t - bucket.hourStart >= HOUR) {
      bucket = { hourStart: t, used: 0, contentTimes: bucket?.contentTimes ?? [] };
      this.#buckets.set(key, bucket);
    }
    const reset = Math.ceil((bucket.hourStart + HOUR) / 1000);
    const headers = (used: number) => ({
      'x-ratelimit-limit': String(this.settings.requestsPerHour),
      'x-ratelimit-remaining': String(Math.max(0, this.settings.requestsPerHour - used)),
      'x-ratelimit-used': String(used),
      'x-ratelimit-reset': String(reset),
      'x-ratelimit-resource': 'core',
    });

    if (bucket.used >= this.settings.requestsPerHour) {
      return {
        ok: false,
        headers: headers(bucket.used),
        message: `API rate limit exceeded for installation ID ${key}.`,
        documentationUrl:
          'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits',
      };
    }

    if (contentCreating) {
      bucket.contentTimes = bucket.contentTimes.filter((time) => t - time < HOUR);
      const lastMinute = bucket.contentTimes.filter((time) => t - time < MINUTE);
      const overMinute = lastMinute.length >= this.settings.contentPerMinute;
      const overHour = bucket.contentTimes.length >= this.settings.contentPerHour;
      if (overMinute || overHour) {
        // Wait until the oldest request of the full window leaves it.
        const oldest = overHour ? bucket.contentTimes[0]! + HOUR : lastMinute[0]! + MINUTE;
        const retryAfter = Math.max(1, Math.ceil((oldest - t) / 1000));
        return {
          ok: false,
          headers: { ...headers(bucket.used), 'retry-after': String(retryAfter) },
          message:
            'You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.',
          documentationUrl:
            'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
        };
      }
      bucket.contentTimes.push(t);
    }
    bucket.used += 1;
    return { ok: true, headers: headers(bucket.used) };
  }
}
