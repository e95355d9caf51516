// Server-side printing: `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
// columns the server chooses. Custom resources get Name and their CRD's additionalPrinterColumns (or Name and
// Age when it has none), as kube-apiserver does; built-in kinds get Name and Age, and pods and namespaces their
// phase as Status — fewer columns than kube-apiserver prints for them. JSONPath in printer columns: dotted fields,
// [index] and [?(@.field=="value")] filters.
import type { KubeObject } from './store.ts';
import type { PrinterColumn, ResourceType } from './resources.ts';

const NAME: PrinterColumn = { name: 'Name', type: 'string', format: 'name', jsonPath: '.metadata.name', description: 'Name must be unique within a namespace.' };
const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'CreationTimestamp is when the object was created.' };

const BUILTIN_COLUMNS: Record<string, PrinterColumn[]> = {
  pods: [
    { name: 'Status', type: 'string', jsonPath: '.status.phase' },
    AGE,
    { name: 'IP', type: 'string', jsonPath: '.status.podIP', priority: 1 },
    { name: 'Node', type: 'string', jsonPath: '.spec.nodeName', priority: 1 },
  ],
  namespaces: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, AGE],
};

/** The Table version an Accept header asks for, if it asks for one. */
export function tableVersion(accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  for (const media of (accept ?? '').split(',')) {
    const params = new Map(media.split(';').slice(1).map((p) => p.trim().split('=') as [string, string]));
    if (params.get('as') === 'Table' && params.get('g') === 'meta.k8s.io' && (params.get('v') === 'v1' || params.get('v') === 'v1beta1')) return params.get('v') as 'v1' | 'v1beta1';
  }
  return undefined;
}

export function columnsOf(type: ResourceType): PrinterColumn[] {
  const extra = type.printerColumns ?? BUILTIN_COLUMNS[type.storageKey] ?? [AGE];
  return [NAME, ...extra];
}

export interface TableRequest {
  version: 'v1' | 'v1beta1';
  /** `includeObject`: what each row carries besides its cells (kubectl uses the metadata) */
  includeObject: 'None' | 'Metadata' | 'Object';
  now: Date;
}

export function toTable(type: ResourceType, objects: KubeObject[], listMeta: Record<string, unknown>, request: TableRequest): Record<string, unknown> {
  const columns = columnsOf(type);
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${request.version}`,
    metadata: listMeta,
    columnDefinitions: columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })),
    rows: objects.map((object) => ({
      cells: columns.map((c) => cell(c, object, request.now)),
      ...(request.includeObject === 'None' ? {} : { object: request.includeObject === 'Object' ? object : partial(object, request.version) }),
    })),
  };
}

function partial(object: KubeObject, version: string): Record<string, unknown> {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: object.metadata };
}

function cell(column: PrinterColumn, object: KubeObject, now: Date): unknown {
  const value = evaluate(column.jsonPath, object);
  if (value === undefined || value === null) return null;
  switch (column.type) {
    case 'date':
      return typeof value === 'string' ? humanDuration(now.getTime() - Date.parse(value)) : '<invalid>';
    case 'integer':
    case 'number':
    case 'boolean':
      return value;
    default:
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** A simple JSONPath: `.a.b`, `.a[0]`, `.a[?(@.type=="Ready")].status`; undefined when it finds nothing. */
export function evaluate(path: string, root: unknown): unknown {
  const steps = path.replace(/^\{?\$?/, '').replace(/\}$/, '').match(/\.[^.[]+|\[\?\(@\.[^)]*\)\]|\[\d+\]/g) ?? [];
  let value: unknown = root;
  for (const step of steps) {
    if (value === undefined || value === null) return undefined;
    if (step.startsWith('[?')) {
      const m = /^\[\?\(@\.([\w.-]+)\s*==\s*["']?([^"']*)["']?\)\]$/.exec(step);
      value = m && Array.isArray(value) ? value.find((item) => String(evaluate(`.${m[1]}`, item)) === m[2]) : undefined;
    } else if (step.startsWith('[')) {
      value = Array.isArray(value) ? value[Number(step.slice(1, -1))] : undefined;
    } else {
      value = typeof value === 'object' ? (value as Record<string, unknown>)[step.slice(1)] : undefined;
    }
  }
  return value;
}

/** An age as kubectl shows it (k8s.io/apimachinery/pkg/util/duration.HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${hours / 24}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${days / 365}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}
