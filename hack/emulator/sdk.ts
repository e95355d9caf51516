// Pointing the real tencentcloud-sdk-nodejs clients at the emulator, the way the agent does it
// (agent/cloud/endpoint.ts): the endpoint keeps the names vpc.tencentcloudapi.com / cvm.…, and an
// http.Agent sends every connection to the emulator's address.
import type { AddressInfo } from 'node:net';
import { httpProfile } from '../../agent/cloud/endpoint.ts';

export interface SdkCredential {
  secretId: string;
  secretKey: string;
  token?: string;
}

/** The ClientConfig that makes an SDK client of `service` talk to the emulator at `api`. */
export function clientConfig(
  api: Pick<AddressInfo, 'address' | 'port'>,
  options: { service: 'vpc' | 'cvm'; region: string; credential: SdkCredential | { getCredential(): Promise<SdkCredential> } },
) {
  return {
    credential: options.credential,
    region: options.region,
    profile: { httpProfile: { ...httpProfile(options.service, { url: `http://tencentcloudapi.com:${api.port}`, resolve: api.address }), reqTimeout: 10 } },
  };
}
