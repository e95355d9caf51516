// Health and introspection over HTTP, for the DaemonSet's probes and for people debugging a node:
//   /healthz  the agent's event loop answers (liveness)
//   /readyz   the agent serves ADDs (readiness): 503 with the reason otherwise
//   /status   the pool as JSON: ENIs, addresses, allocations, limits, the last error
//   /metrics  Prometheus metrics (metrics.ts), when the program has them
//   /doctor   one pod's path checked link by link (?pod=namespace/name, an address or a container id),
//             or every pod's without ?pod (doctor.ts), for eni-cnictl doctor
import { createServer, type Server } from 'node:http';

export interface HealthSources {
  ready(): { ok: boolean; why?: string | undefined };
  status(): unknown;
  metrics?: { text(): Promise<string>; contentType: string };
  doctor?(pod: string | undefined): Promise<unknown>;
}

export async function serveHealth(host: string, port: number, sources: HealthSources): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const path = url.pathname;
    const send = (code: number, body: string, type = 'text/plain') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (path === '/healthz') return send(200, 'ok\n');
    if (path === '/readyz') {
      const { ok, why } = sources.ready();
      return ok ? send(200, 'ok\n') : send(503, `not ready: ${why ?? 'starting'}\n`);
    }
    if (path === '/status') return send(200, `${JSON.stringify(sources.status(), null, 2)}\n`, 'application/json');
    if (path === '/metrics' && sources.metrics) {
      const { metrics } = sources;
      void metrics.text().then(
        (text) => send(200, text, metrics.contentType),
        (err: Error) => send(500, `metrics: ${err.message}\n`),
      );
      return;
    }
    if (path === '/doctor' && sources.doctor) {
      void sources.doctor(url.searchParams.get('pod') ?? undefined).then(
        (report) => send(200, `${JSON.stringify(report, null, 2)}\n`, 'application/json'),
        (err: Error) => send(500, `doctor: ${err.message}\n`),
      );
      return;
    }
    return send(404, `no ${path} here; try /healthz, /readyz, /status${sources.metrics ? ', /metrics' : ''}${sources.doctor ? ', /doctor' : ''}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve health on ${host}:${port}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  return server;
}
