// The local Tencent Cloud: the API server, the metadata service and the inspection endpoints, started
// together in-process (tests) or from the command line (main.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActionContext } from './actions/action.ts';
import { ApiHandler } from './api.ts';
import { KeyStore } from './auth.ts';
import { Faults, RateLimiter, type FaultInput } from './faults.ts';
import { MetadataHandler } from './metadata.ts';
import { CloudModel, type Clock, type CloudEvent } from './model.ts';
import { renderEip, renderEni, renderInstance } from './render.ts';
import { DEFAULT_RATE_LIMITS, defaultWorld, WorldSchema, type InstanceSpec, type World } from './world.ts';

export interface EmulatorOptions {
  world?: World;
  /** API and inspection endpoints; port 0 picks a free one */
  host?: string;
  port?: number;
  /** metadata service; port 0 picks a free one */
  metadataHost?: string;
  metadataPort?: number;
  clock?: Clock;
}

export class Emulator {
  readonly model: CloudModel;
  readonly faults = new Faults();
  readonly keys: KeyStore;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly streams = new Set<ServerResponse>();
  private apiServer?: Server;
  private api?: ApiHandler;
  private metadataServer?: Server;

  private constructor(world: World, clock: Clock) {
    this.model = new CloudModel(world, clock);
    this.keys = new KeyStore(world.credentials, clock, world.tempCredentialTtlSec);
  }

  static async start(options: EmulatorOptions = {}): Promise<Emulator> {
    const emulator = new Emulator(options.world ?? defaultWorld(), options.clock ?? { now: () => Date.now() });
    await emulator.listen(options);
    return emulator;
  }

  /** host:port of the API, as the SDK's httpProfile.endpoint wants it (see sdk.ts) */
  get apiAddress(): AddressInfo {
    return this.apiServer!.address() as AddressInfo;
  }

  get metadataUrl(): string {
    const { address, port } = this.metadataServer!.address() as AddressInfo;
    return `http://${address}:${port}`;
  }

  get apiUrl(): string {
    const { address, port } = this.apiAddress;
    return `http://${address}:${port}`;
  }

  get world(): World {
    return this.model.world;
  }

  /** Subscribes to network changes as they take effect; returns the unsubscribe function. */
  onEvent(listener: (event: CloudEvent) => void): () => void {
    this.model.events.on('event', listener);
    return () => this.model.events.off('event', listener);
  }

  addFault(fault: FaultInput) {
    return this.faults.add(fault);
  }

  addInstance(spec: InstanceSpec) {
    return this.model.addInstance(spec);
  }

  /** Calls answered so far by action (ok, throttled, failed): a cheap part of state(). */
  calls(): Record<string, { ok: number; throttled: number; failed: number }> {
    return Object.fromEntries([...(this.api?.calls ?? [])].map(([action, c]) => [action, { ...c }]));
  }

  /** From now on, remembers when each call came (for a benchmark's busiest second); returns the list it fills. */
  recordArrivals(): Array<{ at: number; action: string }> {
    if (!this.api) throw new Error('the emulator is not serving');
    return (this.api.arrivals ??= []);
  }

  /** The whole state, as the inspection endpoint shows it. */
  state() {
    const { model } = this;
    return {
      region: model.world.region,
      vpc: model.world.vpc,
      subnets: [...model.subnets.values()].map((s) => ({
        ...s.spec,
        gateway: model.gateway(s.spec.id),
        available: model.availableAddresses(s.spec.id),
        used: [...s.used].sort(),
      })),
      instances: [...model.instances.values()].map((i) => ({ ...renderInstance(model, i), EniQuota: i.enis, IpsPerEni: i.ipsPerEni })),
      networkInterfaces: [...model.enis.values()].map((e) => renderEni(model, e)),
      addresses: [...model.eips.values()].map(renderEip),
      runningTasks: [...model.tasks.values()].filter((t) => t.status === 'RUNNING').map((t) => t.id),
      calls: Object.fromEntries(this.api?.calls ?? []),
      faults: this.faults.list(),
    };
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const stream of this.streams) stream.end();
    await Promise.all([closeServer(this.apiServer), closeServer(this.metadataServer)]);
  }

  private async listen(options: EmulatorOptions): Promise<void> {
    const api = (this.api = new ApiHandler({
      model: this.model,
      keys: this.keys,
      faults: this.faults,
      limiter: new RateLimiter({ ...DEFAULT_RATE_LIMITS, ...this.model.world.rateLimits }),
      runAsync: (requestId) => this.runAsync(requestId),
      sleep: (ms) => sleep(ms),
    }));
    const metadata = new MetadataHandler(this.model, this.keys);
    this.apiServer = createServer((req, res) => {
      readBody(req)
        .then((body) => (req.url?.startsWith('/emulator/') ? this.inspect(req, res, body) : api.handle(req, res, body)))
        .catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`emulator: ${(err as Error).message}`);
        });
    });
    this.metadataServer = createServer((req, res) => metadata.handle(req, res));
    await Promise.all([
      listenOn(this.apiServer, options.host ?? '127.0.0.1', options.port ?? 0),
      listenOn(this.metadataServer, options.metadataHost ?? options.host ?? '127.0.0.1', options.metadataPort ?? 0),
    ]);
  }

  private runAsync(requestId: string): ActionContext['runAsync'] {
    return (holds, work) => {
      const task = this.model.newTask(requestId);
      for (const resource of holds) resource.busyWith = task.id;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        try {
          work();
          task.status = 'SUCCESS';
        } catch (err) {
          task.status = 'FAILED';
          task.output = (err as Error).message;
        } finally {
          for (const resource of holds) if (resource.busyWith === task.id) resource.busyWith = undefined;
        }
      }, this.model.world.latencies.taskMs);
      this.timers.add(timer);
      return task;
    };
  }

  /** The endpoints outside the Tencent API: state, events, faults, instances. */
  private async inspect(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const route = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value, null, 2));
    };
    const parsed = () => JSON.parse(body.toString('utf8') || '{}') as unknown;
    try {
      switch (route) {
        case 'GET /emulator/state':
          return json(200, this.state());
        case 'GET /emulator/events': {
          res.writeHead(200, { 'content-type': 'application/x-ndjson' });
          res.flushHeaders();
          const unsubscribe = this.onEvent((event) => res.write(`${JSON.stringify(event)}\n`));
          this.streams.add(res);
          res.on('close', () => {
            this.streams.delete(res);
            unsubscribe();
          });
          return;
        }
        case 'GET /emulator/faults':
          return json(200, this.faults.list());
        case 'POST /emulator/faults':
          return json(201, this.faults.add(parsed() as FaultInput));
        case 'DELETE /emulator/faults':
          this.faults.clear();
          return json(200, []);
        case 'POST /emulator/instances': {
          const spec = WorldSchema.shape.instances.unwrap().element.parse(parsed());
          return json(201, renderInstance(this.model, this.addInstance(spec)));
        }
        default:
          return json(404, { error: `no route ${route}; see hack/emulator/README.md` });
      }
    } catch (err) {
      return json(400, { error: (err as Error).message });
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
