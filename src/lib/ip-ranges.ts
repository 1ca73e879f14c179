/**
 * Which addresses an outbound call (a notify webhook) may reach: IP
 * addresses and CIDR ranges as numbers, the ranges that are not the public
 * internet, and the operator's allowlist of internal hosts. Pure: callers
 * resolve names and pass the addresses.
 */
import { isIP } from 'node:net';

/** An address as a number: 32 bits for IPv4, 128 for IPv6. */
type Address = { family: 4 | 6; value: bigint };
type Range = { family: 4 | 6; base: bigint; bits: number };

function parseIPv4(text: string): bigint {
  return text.split('.').reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);
}

/** The eight 16-bit groups of an IPv6 address (which isIP accepted), `::` and a dotted tail included. */
function parseIPv6(text: string): bigint {
  const zone = text.indexOf('%');
  const bare = zone === -1 ? text : text.slice(0, zone);
  const [head = '', tail] = bare.split('::') as [string, string | undefined];
  const groups = (part: string): bigint[] => {
    if (part === '') return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [BigInt(parseInt(group, 16))];
      const v4 = parseIPv4(group);
      return [v4 >> 16n, v4 & 0xffffn];
    });
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<bigint>(8 - left.length - right.length).fill(0n), ...right];
  return all.reduce((value, group) => (value << 16n) | group, 0n);
}

function parseAddress(text: string): Address | undefined {
  const family = isIP(text);
  if (family === 4) return { family, value: parseIPv4(text) };
  if (family === 6) return { family, value: parseIPv6(text) };
  return undefined;
}

function parseRange(text: string): Range | undefined {
  const slash = text.indexOf('/');
  const address = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const width = address.family === 4 ? 32 : 128;
  const bitsText = slash === -1 ? String(width) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > width) return undefined;
  const bits = Number(bitsText);
  const host = (1n << BigInt(width - bits)) - 1n;
  return { family: address.family, base: address.value & ~host, bits };
}

function inRange(address: Address, range: Range): boolean {
  if (address.family !== range.family) return false;
  const width = address.family === 4 ? 32 : 128;
  const shift = BigInt(width - range.bits);
  return address.value >> shift === range.base >> shift;
}

function ranges(entries: [string, string][]): { range: Range; why: string }[] {
  return entries.map(([cidr, why]) => ({ range: parseRange(cidr)!, why }));
}

/** IPv4 ranges that are not the public internet (RFC 6890), with why. */
const nonPublicV4 = ranges([
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (carrier-grade NAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (where cloud metadata services answer)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'reserved for documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'reserved for benchmarks'],
  ['198.51.100.0/24', 'reserved for documentation'],
  ['203.0.113.0/24', 'reserved for documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
]);

const nonPublicV6 = ranges([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'private'],
  ['100::/64', 'reserved'],
  ['2001:db8::/32', 'reserved for documentation'],
  ['fc00::/7', 'private'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'private'],
  ['ff00::/8', 'multicast'],
]);

/** IPv6 forms that carry an IPv4 address: it is the IPv4 address that is reached. */
const embeddingV4 = ranges([
  ['::ffff:0:0/96', 'IPv4-mapped'],
  ['::/96', 'IPv4-compatible'],
  ['64:ff9b::/96', 'NAT64'],
]).map(({ range }) => range);
const sixToFour = parseRange('2002::/16')!;

function embeddedV4(address: Address): Address | undefined {
  if (address.family === 6 && embeddingV4.some((range) => inRange(address, range))) {
    return { family: 4, value: address.value & 0xffffffffn };
  }
  if (inRange(address, sixToFour))
    return { family: 4, value: (address.value >> 80n) & 0xffffffffn };
  return undefined;
}

/**
 * Why the address is not on the public internet (`loopback`, `private`,
 * `link-local …`), or undefined when it is. IPv6 forms that carry an IPv4
 * address are judged by that address; text that is not an address is `not
 * an IP address`.
 */
export function nonPublicReason(text: string): string | undefined {
  const address = parseAddress(text);
  if (!address) return 'not an IP address';
  const why = (judged: Address) =>
    (judged.family === 4 ? nonPublicV4 : nonPublicV6).find(({ range }) => inRange(judged, range))
      ?.why;
  const v4 = embeddedV4(address);
  return why(address) ?? (v4 && why(v4));
}

/** Host names and address ranges that outbound calls may reach although they are not public. */
export type HostAllowList = { hosts: ReadonlySet<string>; ranges: readonly Range[] };

export const emptyAllowList: HostAllowList = { hosts: new Set(), ranges: [] };

const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** Entries in one allowlist, at most: it lists a few internal hooks, not a network map. */
export const MAX_ALLOW_ENTRIES = 100;

/**
 * Parses a comma-separated allowlist: host names (matched exactly, case
 * aside), IP addresses and CIDR ranges. Returns the problem for an entry it
 * cannot read.
 */
export function parseHostAllowList(
  text: string,
): { ok: true; list: HostAllowList } | { ok: false; problem: string } {
  const entries = text
    .split(',')
    .map((entry) => entry.trim().toLowerCase().replace(/\.$/, ''))
    .filter((entry) => entry !== '');
  if (entries.length > MAX_ALLOW_ENTRIES) {
    return {
      ok: false,
      problem: `lists ${entries.length} entries, more than ${MAX_ALLOW_ENTRIES}`,
    };
  }
  const hosts = new Set<string>();
  const list: Range[] = [];
  for (const entry of entries) {
    const range = parseRange(entry.replace(/^\[(.*)\]$/, '$1'));
    if (range) list.push(range);
    else if (HOST_NAME.test(entry) && !entry.includes('/')) hosts.add(entry);
    else {
      return {
        ok: false,
        problem: `"${entry}" is neither a host name, an IP address nor a CIDR range (like 10.0.0.0/8)`,
      };
    }
  }
  return { ok: true, list: { hosts, ranges: list } };
}

/** Whether the allowlist names the host, or has a range holding the address. */
export function isAllowed(list: HostAllowList, host: string, address: string): boolean {
  if (list.hosts.has(host.toLowerCase().replace(/\.$/, ''))) return true;
  const parsed = parseAddress(address);
  if (!parsed) return false;
  const v4 = embeddedV4(parsed);
  return list.ranges.some(
    (range) => inRange(parsed, range) || (v4 !== undefined && inRange(v4, range)),
  );
}
