// Pointing the real tencentcloud-sdk-nodejs clients at the emulator. The SDK signs for the service named
// by the endpoint's first label, so the endpoint stays vpc.tencentcloudapi.com:PORT (or cvm.…) and an
// http.Agent resolves every name to the emulator's address.
import { Agent } from 'node:http';
import type { LookupFunction } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface SdkCredential {
  secretId: string;
  secretKey: string;
  token?: string;
}

/** An http.Agent whose every connection goes to `target`, whatever host name the URL carries. */
export function agentFor(target: Pick<AddressInfo, 'address'>): Agent {
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) (callback as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: target.address, family: 4 }]);
    else callback(null, target.address, 4);
  };
  return new Agent({ keepAlive: true, lookup });
}

/** The ClientConfig that makes an SDK client of `service` talk to the emulator at `api`. */
export function clientConfig(
  api: Pick<AddressInfo, 'address' | 'port'>,
  options: { service: 'vpc' | 'cvm'; region: string; credential: SdkCredential | { getCredential(): Promise<SdkCredential> }; agent?: Agent },
) {
  return {
    credential: options.credential,
    region: options.region,
    profile: {
      httpProfile: {
        endpoint: `${options.service}.tencentcloudapi.com:${api.port}`,
        protocol: 'http://',
        agent: options.agent ?? agentFor(api),
        reqTimeout: 10,
      },
    },
  };
}
