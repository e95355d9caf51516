// IPv4 helpers shared by the agent, the plugin and the local cloud. Addresses travel as dotted strings;
// arithmetic happens on unsigned 32-bit numbers.

export interface Cidr {
  /** network address as an unsigned 32-bit number */
  readonly base: number;
  readonly prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIPv4(text: string): boolean {
  const m = IPV4.exec(text);
  return m !== null && m.slice(1).every((part) => Number(part) <= 255 && String(Number(part)) === part);
}

export function ipToInt(ip: string): number {
  if (!isIPv4(ip)) throw new Error(`not an IPv4 address: "${ip}"`);
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(text: string): Cidr {
  const [ip, bits, ...rest] = text.split('/');
  const prefix = Number(bits);
  if (ip === undefined || bits === undefined || rest.length > 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new Error(`not an IPv4 CIDR: "${text}"`);
  }
  const mask = prefixMask(prefix);
  return { base: (ipToInt(ip) & mask) >>> 0, prefix };
}

export function isCidr(text: string): boolean {
  try {
    parseCidr(text);
    return true;
  } catch {
    return false;
  }
}

export function formatCidr(cidr: Cidr): string {
  return `${intToIp(cidr.base)}/${cidr.prefix}`;
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  return ((ipToInt(ip) & prefixMask(cidr.prefix)) >>> 0) === cidr.base;
}

/** True when `inner` lies wholly inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && ((inner.base & prefixMask(outer.prefix)) >>> 0) === outer.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrWithin(a, b) || cidrWithin(b, a);
}

/** The nth address of a CIDR (0 is the network address). */
export function nthAddress(cidr: Cidr, n: number): string {
  return intToIp((cidr.base + n) >>> 0);
}
