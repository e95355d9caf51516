// CNI spec types, versions and error codes (spec 1.1.0 and the older versions runtimes still send).
// Imported by the plugin on every pod's start-up: keep it free of dependencies.

export const CNI_VERSION = '1.1.0';
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The spec's well-known error codes, plus this plugin's own (100 and up). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  NotAvailableLimitedConnectivity: 51,
  /** the agent refused the request for a reason of its own (the message says which) */
  AgentRefused: 100,
  Internal: 999,
} as const;
export type CniCode = (typeof CniCode)[keyof typeof CniCode];

/** The one error type of the plugin: converted to the spec's JSON once, at the edge. */
export class CniError extends Error {
  constructor(
    readonly code: CniCode,
    message: string,
    readonly details = '',
  ) {
    super(message);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string) {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIp {
  /** CIDR notation, e.g. 10.0.16.5/32 */
  address: string;
  gateway?: string;
  /** index into interfaces */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

/** A result in the newest shape; `formatResult` turns it into the shape a version asks for. */
export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

export function isSupportedVersion(version: string): version is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** The result as version `version` of the spec writes it: 0.3.x and 0.4.0 carry `version: "4"` on each IP. */
export function formatResult(result: Omit<CniResult, 'cniVersion'>, version: CniVersion): CniResult & { ips: Array<CniIp & { version?: string }> } {
  const legacy = version.startsWith('0.');
  return {
    cniVersion: version,
    interfaces: result.interfaces,
    ips: result.ips.map((ip) => (legacy ? { version: '4', ...ip } : ip)),
    routes: result.routes,
    dns: result.dns,
  };
}
