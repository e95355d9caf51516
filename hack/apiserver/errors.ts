// The one error type of the API server: a Kubernetes `Status` reason, which decides the HTTP code, and the
// message and details kube-apiserver would give (k8s.io/apimachinery/pkg/api/errors), so clients that look at
// `reason` or `code` — client-go, kubectl, @kubernetes/client-node — take the same branch as against a real one.

export const REASON_CODES = {
  BadRequest: 400,
  Unauthorized: 401,
  NotFound: 404,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  AlreadyExists: 409,
  Conflict: 409,
  Expired: 410,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  Invalid: 422,
  InternalError: 500,
} as const;
export type Reason = keyof typeof REASON_CODES;

/** One problem with one field: `field` is a dotted path, `reason` one of apimachinery's FieldValue* types. */
export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  /** the resource (plural) for most errors; the Kind for Invalid, as kube-apiserver does */
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

export class ApiError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get code(): number {
    return REASON_CODES[this.reason];
  }

  toStatus(): Record<string, unknown> {
    return status({ status: 'Failure', message: this.message, reason: this.reason, details: this.details, code: this.code });
  }
}

export function status(fields: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, ...fields };
}

/** What an error message calls a resource: `pods`, `nodeeniconfigs.networking.tke.cloud.tencent.com`. */
export interface ResourceName {
  group: string;
  plural: string;
}

function qualified(r: ResourceName): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

function detailsOf(r: ResourceName, name: string): StatusDetails {
  return { name, ...(r.group ? { group: r.group } : {}), kind: r.plural };
}

export function notFound(r: ResourceName, name: string): ApiError {
  return new ApiError('NotFound', `${qualified(r)} "${name}" not found`, detailsOf(r, name));
}

export function alreadyExists(r: ResourceName, name: string): ApiError {
  return new ApiError('AlreadyExists', `${qualified(r)} "${name}" already exists`, detailsOf(r, name));
}

export function conflict(r: ResourceName, name: string, why: string): ApiError {
  return new ApiError('Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, detailsOf(r, name));
}

export const STALE_OBJECT = 'the object has been modified; please apply your changes to the latest version and try again';

export function badRequest(message: string): ApiError {
  return new ApiError('BadRequest', message);
}

/** A field-level problem, worded as apimachinery's field.Error prints it. */
export function fieldError(reason: FieldReason, field: string, detail: string, value?: unknown): StatusCause {
  const shown = value === undefined ? '' : `${JSON.stringify(value)}: `;
  const message = {
    FieldValueRequired: 'Required value',
    FieldValueInvalid: `Invalid value: ${shown}${detail}`,
    FieldValueForbidden: `Forbidden: ${detail}`,
    FieldValueNotSupported: `Unsupported value: ${shown}${detail}`,
    FieldValueTypeInvalid: `Invalid value: ${shown}${detail}`,
    FieldValueDuplicate: `Duplicate value: ${JSON.stringify(value)}`,
    FieldValueTooLong: `Too long: ${detail}`,
  }[reason];
  return { reason, field, message: reason === 'FieldValueRequired' && detail ? `${message}: ${detail}` : message };
}
export type FieldReason =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueForbidden'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeInvalid'
  | 'FieldValueDuplicate'
  | 'FieldValueTooLong';

/** 422 for an object that fails validation: `Pod "web" is invalid: spec.containers: Required value`. */
export function invalid(kind: { group: string; kind: string }, name: string, causes: StatusCause[]): ApiError {
  const qualifiedKind = kind.group ? `${kind.kind}.${kind.group}` : kind.kind;
  const listed = causes.map((c) => `${c.field}: ${c.message}`);
  const text = listed.length === 1 ? listed[0] : `[${listed.join(', ')}]`;
  return new ApiError('Invalid', `${qualifiedKind} "${name}" is invalid: ${text}`, {
    name,
    ...(kind.group ? { group: kind.group } : {}),
    kind: kind.kind,
    causes,
  });
}

export function expired(message: string): ApiError {
  return new ApiError('Expired', message);
}
