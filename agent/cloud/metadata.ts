// The CVM metadata service: who this node is, and the temporary keys of its CAM role.
export const DEFAULT_METADATA_URL = 'http://metadata.tencentyun.com/latest/meta-data';

export class Metadata {
  constructor(private readonly baseUrl: string = DEFAULT_METADATA_URL) {}

  async get(path: string): Promise<string> {
    const url = `${this.baseUrl.replace(/\/+$/, '')}/${path}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw new Error(`metadata service ${url} cannot be reached: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`metadata service ${url} answered ${res.status}: ${text.slice(0, 200)}`);
    return text.trim();
  }

  async instance(): Promise<{ instanceId: string; region: string; zone: string; mac: string; privateIp: string }> {
    const [instanceId, region, zone, mac, privateIp] = await Promise.all(
      ['instance-id', 'placement/region', 'placement/zone', 'mac', 'local-ipv4'].map((p) => this.get(p)),
    );
    return { instanceId: instanceId!, region: region!, zone: zone!, mac: mac!, privateIp: privateIp! };
  }

  /** A credential provider for the SDK: the role's temporary keys, fetched again before they expire. */
  roleCredential(clock: { now(): number } = Date): { getCredential(): Promise<{ secretId: string; secretKey: string; token: string }> } {
    let cached: { secretId: string; secretKey: string; token: string; expiresAt: number } | undefined;
    return {
      getCredential: async () => {
        if (!cached || cached.expiresAt - 5 * 60_000 <= clock.now()) {
          const role = (await this.get('cam/security-credentials/')).split('\n')[0];
          if (!role) throw new Error('the instance has no CAM role; give the agent keys with --credentials-file');
          const keys = JSON.parse(await this.get(`cam/security-credentials/${role}`)) as Record<string, string | number>;
          if (keys.Code !== 'Success') throw new Error(`the metadata service did not give keys for role ${role}: ${String(keys.Code)}`);
          cached = { secretId: String(keys.TmpSecretId), secretKey: String(keys.TmpSecretKey), token: String(keys.Token), expiresAt: Number(keys.ExpiredTime) * 1000 };
        }
        return { secretId: cached.secretId, secretKey: cached.secretKey, token: cached.token };
      },
    };
  }
}
