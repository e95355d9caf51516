// Server-side printing: `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
// columns the server chooses. Custom resources get Name and their CRD's additionalPrinterColumns (or Name and
// Age when it has none), as kube-apiserver does; built-in kinds with a printer in printers.ts get kube-apiserver's
// columns, the others Name and Age. JSONPath in printer columns: dotted fields, [index] and
// [?(@.field=="value")] filters.
import { humanDuration, NAME_COLUMN, PRINTERS, type ColumnDefinition } from './printers.ts';
import type { KubeObject } from './store.ts';
import type { PrinterColumn, ResourceType } from './resources.ts';

const NAME: PrinterColumn = { name: 'Name', type: 'string', format: 'name', jsonPath: '.metadata.name', description: NAME_COLUMN.description };
const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'CreationTimestamp is when the object was created.' };

/** The Table version an Accept header asks for, if it asks for one. */
export function tableVersion(accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  for (const media of (accept ?? '').split(',')) {
    const params = new Map(media.split(';').slice(1).map((p) => p.trim().split('=') as [string, string]));
    if (params.get('as') === 'Table' && params.get('g') === 'meta.k8s.io' && (params.get('v') === 'v1' || params.get('v') === 'v1beta1')) return params.get('v') as 'v1' | 'v1beta1';
  }
  return undefined;
}

/** The printer-column (JSONPath) columns of a resource without a printer of its own. */
function columnsOf(type: ResourceType): PrinterColumn[] {
  return [NAME, ...(type.printerColumns ?? [AGE])];
}

export interface TableRequest {
  version: 'v1' | 'v1beta1';
  /** `includeObject`: what each row carries besides its cells (kubectl uses the metadata) */
  includeObject: 'None' | 'Metadata' | 'Object';
  now: Date;
}

export function toTable(type: ResourceType, objects: KubeObject[], listMeta: Record<string, unknown>, request: TableRequest): Record<string, unknown> {
  const printer = type.custom ? undefined : PRINTERS[type.storageKey];
  const columns = columnsOf(type);
  const definitions: ColumnDefinition[] =
    printer?.columns ?? columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 }));
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${request.version}`,
    metadata: listMeta,
    columnDefinitions: definitions,
    rows: objects.map((object) => {
      const conditions = printer?.conditions?.(object);
      return {
        cells: printer ? printer.cells(object, request.now) : columns.map((c) => cell(c, object, request.now)),
        ...(conditions ? { conditions } : {}),
        ...(request.includeObject === 'None' ? {} : { object: request.includeObject === 'Object' ? object : partial(object, request.version) }),
      };
    }),
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
