// The API gateway's behaviour through the real SDK: signatures, actions, parameters, rate limits.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from './emulator.ts';
import { codeOf, cvmClient, startTestEmulator, testWorld, vpcClient } from './testing.ts';

let emulator: Emulator;
afterEach(async () => emulator?.close());

describe('signatures', () => {
  beforeEach(async () => {
    emulator = await startTestEmulator();
  });

  it('answers a correctly signed call', async () => {
    const { VpcSet, TotalCount } = await vpcClient(emulator).DescribeVpcs({});
    expect(TotalCount).toBe(1);
    expect(VpcSet?.[0]).toMatchObject({ VpcId: 'vpc-lab00001', CidrBlock: '10.0.0.0/16' });
  });

  it('refuses an unknown SecretId', async () => {
    const vpc = vpcClient(emulator, { secretId: 'AKIDnobody', secretKey: 'x' });
    expect(await codeOf(vpc.DescribeVpcs({}))).toBe('AuthFailure.SecretIdNotFound');
  });

  it('refuses a signature made with the wrong key', async () => {
    const vpc = vpcClient(emulator, { secretId: emulator.world.credentials[0]!.secretId, secretKey: 'not-the-key' });
    expect(await codeOf(vpc.DescribeVpcs({}))).toBe('AuthFailure.SignatureFailure');
  });

  it('refuses a timestamp too far from its clock', async () => {
    await emulator.close();
    emulator = await startTestEmulator({ clock: { now: () => Date.now() + 10 * 60_000 } });
    expect(await codeOf(vpcClient(emulator).DescribeVpcs({}))).toBe('AuthFailure.SignatureExpire');
  });

  it('refuses a request signed for a service it is not', async () => {
    const { Client } = await import('tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js');
    const wrong = new Client({
      credential: emulator.world.credentials[0]!,
      region: emulator.world.region,
      profile: { httpProfile: { endpoint: `127.0.0.1:${emulator.apiAddress.port}`, protocol: 'http://' } },
    });
    const err = await wrong.DescribeVpcs({}).catch((e: { code: string; message: string }) => e);
    expect(err).toMatchObject({ code: 'AuthFailure.SignatureFailure' });
    expect((err as Error).message).toContain('"127"');
  });
});

describe('actions and parameters', () => {
  beforeEach(async () => {
    emulator = await startTestEmulator();
  });

  it('refuses an action the service does not have', async () => {
    const vpc = vpcClient(emulator);
    expect(await codeOf(vpc.request('DescribeSomethingElse', {}))).toBe('InvalidAction');
    // A CVM action through the VPC endpoint is unknown there too.
    expect(await codeOf(vpc.request('DescribeInstances', {}))).toBe('InvalidAction');
  });

  it('names unknown, missing and mistyped parameters', async () => {
    const vpc = vpcClient(emulator);
    const unknown = await vpc.request('DescribeNetworkInterfaceLimit', { InstanceId: 'ins-node0001', Colour: 'red' }).catch((e: Error) => e);
    expect(unknown).toMatchObject({ code: 'UnknownParameter' });
    expect((unknown as Error).message).toContain('Colour');
    expect(await codeOf(vpc.request('DescribeNetworkInterfaceLimit', {}))).toBe('MissingParameter');
    expect(await codeOf(vpc.request('DescribeNetworkInterfaceLimit', { InstanceId: 42 }))).toBe('InvalidParameter');
    expect(await codeOf(vpc.DescribeNetworkInterfaceLimit({ InstanceId: 'not-an-id' }))).toBe('InvalidParameterValue.Malformed');
    expect(await codeOf(vpc.DescribeNetworkInterfaces({ Filters: [{ Name: 'colour', Values: ['red'] }] }))).toBe('InvalidParameter.FilterInvalidKey');
    expect(await codeOf(vpc.DescribeNetworkInterfaces({ Limit: 101 }))).toBe('InvalidParameterValue');
  });

  it('refuses a body that is not JSON with InvalidParameter, and keeps serving', async () => {
    type Signer = { sign3(args: Record<string, unknown>): string };
    // The SDK's own signer, so the test sends exactly what the SDK would, but with a broken body.
    const signModule = (await import('tencentcloud-sdk-nodejs/tencentcloud/common/sign.js')) as unknown as { default: Signer & { default?: Signer } };
    const Sign = signModule.default.default ?? signModule.default;
    const body = '{"InstanceId": ';
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = { 'Content-Type': 'application/json' };
    const { secretId, secretKey } = emulator.world.credentials[0]!;
    const url = `${emulator.apiUrl}/`;
    const authorization = Sign.sign3({ method: 'POST', url, payload: Buffer.from(body), timestamp, service: 'vpc', secretId, secretKey, multipart: false, boundary: '', headers });
    const res = await fetch(`${emulator.apiUrl}/`, {
      method: 'POST',
      body,
      headers: {
        ...headers,
        authorization,
        'x-tc-action': 'DescribeNetworkInterfaceLimit',
        'x-tc-version': '2017-03-12',
        'x-tc-region': emulator.world.region,
        'x-tc-timestamp': String(timestamp),
      },
    });
    const json = (await res.json()) as { Response: { Error: { Code: string; Message: string }; RequestId: string } };
    expect(json.Response.Error.Code).toBe('InvalidParameter');
    expect(json.Response.Error.Message).toContain('not valid JSON');
    expect(json.Response.RequestId).toMatch(/[0-9a-f-]{36}/);
    expect((await vpcClient(emulator).DescribeVpcs({})).TotalCount).toBe(1);
  });

  it('refuses an unknown region and version', async () => {
    const { Client } = await import('tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js');
    const { clientConfig } = await import('./sdk.ts');
    const elsewhere = new Client(clientConfig(emulator.apiAddress, { service: 'vpc', region: 'ap-mars-1', credential: emulator.world.credentials[0]! }));
    expect(await codeOf(elsewhere.DescribeVpcs({}))).toBe('UnsupportedRegion');
    const future = vpcClient(emulator);
    (future as unknown as { apiVersion: string }).apiVersion = '2099-01-01';
    expect(await codeOf(future.DescribeVpcs({}))).toBe('NoSuchVersion');
  });

  it('serves CVM DescribeInstances with type, zone and addresses', async () => {
    const { InstanceSet } = await cvmClient(emulator).DescribeInstances({ InstanceIds: ['ins-node0003'] });
    expect(InstanceSet).toHaveLength(1);
    expect(InstanceSet![0]).toMatchObject({ InstanceType: 'S5.2XLARGE16', CPU: 8, Placement: { Zone: 'ap-guangzhou-4' }, PrivateIpAddresses: ['10.0.1.11'] });
  });
});

describe('rate limits', () => {
  it('answers calls over the action limit with RequestLimitExceeded', async () => {
    emulator = await startTestEmulator({ world: testWorld({ rateLimits: { DescribeVpcs: 3 } }) });
    const vpc = vpcClient(emulator);
    const results = await Promise.all(Array.from({ length: 8 }, () => vpc.DescribeVpcs({}).then(() => 'ok', (e: { code: string }) => e.code)));
    const ok = results.filter((r) => r === 'ok').length;
    // Calls may straddle a second boundary, which opens a new window of 3.
    expect(ok).toBeGreaterThanOrEqual(3);
    expect(ok).toBeLessThanOrEqual(6);
    expect(results.filter((r) => r === 'RequestLimitExceeded').length).toBe(8 - ok);
    // Other actions have their own budget.
    await expect(vpc.DescribeSubnets({})).resolves.toBeDefined();
  });
});
