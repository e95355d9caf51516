// Where the cloud API is: Tencent's public endpoints by default, or a local cloud for tests and the lab.
// The SDK signs for the service named by the endpoint's first label (vpc., cvm.), so a local cloud keeps
// those names and an http.Agent sends every connection to its address instead.
import { Agent as HttpAgent } from 'node:http';
import type { LookupFunction } from 'node:net';

/** An http.Agent whose every connection goes to `address`, whatever host name the URL carries. */
export function resolvingAgent(address: string): HttpAgent {
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) (callback as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address, family: 4 }]);
    else callback(null, address, 4);
  };
  return new HttpAgent({ keepAlive: true, lookup });
}

export interface ApiEndpoint {
  /** e.g. https://tencentcloudapi.com, or http://tencentcloudapi.com:9800 for a local cloud */
  url: string;
  /** connect to this address instead of resolving the name (local clouds) */
  resolve?: string | undefined;
}

/** The SDK's httpProfile for `service` at `endpoint`. */
export function httpProfile(service: 'vpc' | 'cvm', endpoint: ApiEndpoint) {
  const url = new URL(endpoint.url);
  const protocol = url.protocol === 'http:' ? 'http://' : 'https://';
  return {
    endpoint: `${service}.${url.hostname}${url.port ? `:${url.port}` : ''}`,
    protocol,
    reqTimeout: 30,
    ...(endpoint.resolve ? { agent: resolvingAgent(endpoint.resolve) } : {}),
  };
}
