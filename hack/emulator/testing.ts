// Test helpers: an emulator with fast tasks, SDK clients pointed at it, and waiting for its tasks.
import { Client as CvmClient } from 'tencentcloud-sdk-nodejs/tencentcloud/services/cvm/v20170312/cvm_client.js';
import { Client as VpcClient } from 'tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js';
import { Emulator, type EmulatorOptions } from './emulator.ts';
import { clientConfig, type SdkCredential } from './sdk.ts';
import { defaultWorld, parseWorld, type World, type WorldInput } from './world.ts';

export { CvmClient, VpcClient };

/** The default world with short task latency, and any changes a test needs. */
export function testWorld(changes: Partial<WorldInput> = {}): World {
  const base = defaultWorld();
  return parseWorld({ ...base, latencies: { taskMs: 30, apiMs: 0 }, ...changes });
}

export async function startTestEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  return Emulator.start({ world: testWorld(), ...options });
}

export function vpcClient(emulator: Emulator, credential?: SdkCredential | { getCredential(): Promise<SdkCredential> }): VpcClient {
  return new VpcClient(
    clientConfig(emulator.apiAddress, { service: 'vpc', region: emulator.world.region, credential: credential ?? emulator.world.credentials[0]! }),
  );
}

export function cvmClient(emulator: Emulator, credential?: SdkCredential): CvmClient {
  return new CvmClient(
    clientConfig(emulator.apiAddress, { service: 'cvm', region: emulator.world.region, credential: credential ?? emulator.world.credentials[0]! }),
  );
}

/** Polls DescribeVpcTaskResult until the task of `requestId` ends (within its 20 a second); returns its final status. */
export async function waitTask(vpc: VpcClient, requestId: string | undefined, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Status } = await vpc.DescribeVpcTaskResult({ TaskId: requestId! });
    if (Status !== 'RUNNING') return Status!;
    if (Date.now() > deadline) throw new Error(`task ${requestId} still RUNNING after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 60));
  }
}

/** Polls DescribeTaskResult until the EIP task `taskId` ends (within its 20 a second); returns its final result. */
export async function waitEipTask(vpc: VpcClient, taskId: string | undefined, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Result } = await vpc.DescribeTaskResult({ TaskId: Number(taskId) });
    if (Result !== 'RUNNING') return Result!;
    if (Date.now() > deadline) throw new Error(`EIP task ${taskId} still RUNNING after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 60));
  }
}

/** The error code a rejected SDK call carried. */
export async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    return (err as { code?: string }).code ?? `no code: ${(err as Error).message}`;
  }
  throw new Error('the call succeeded; an error was expected');
}
