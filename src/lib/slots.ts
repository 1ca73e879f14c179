/**
 * Counts what each client holds open at once (log followers, waiting
 * claims) and refuses more than `max`. Per process, so per replica.
 */
export type Slots = {
  /** A release function, or undefined when `key` holds `max` already; releasing twice counts once. */
  take(key: string): (() => void) | undefined;
};

export function createSlots(max: number): Slots {
  const held = new Map<string, number>();
  return {
    take(key) {
      const count = held.get(key) ?? 0;
      if (count >= max) return undefined;
      held.set(key, count + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (held.get(key) ?? 1) - 1;
        if (left === 0) held.delete(key);
        else held.set(key, left);
      };
    },
  };
}
