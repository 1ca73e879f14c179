/** Time as a dependency, so that pure code and tests control it. */
export type Clock = { now(): Date };

export const systemClock: Clock = { now: () => new Date() };
