// A custom resource against its structural schema: pruning, defaults, and what validation catches.
import { describe, expect, it } from 'vitest';
import { applySchema } from './schema.ts';

const schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    spec: {
      type: 'object',
      required: ['ip'],
      properties: {
        ip: { type: 'string', pattern: '^\\d+\\.\\d+\\.\\d+\\.\\d+$' },
        policy: { type: 'string', enum: ['Immediate', 'Never'], default: 'Immediate' },
        bandwidth: { type: 'integer', minimum: 1, maximum: 100 },
        port: { 'x-kubernetes-int-or-string': true },
        tags: { type: 'object', additionalProperties: { type: 'string' } },
        raw: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        note: { type: 'string', nullable: true },
        ranges: { type: 'array', maxItems: 2, items: { type: 'object', properties: { cidr: { type: 'string' } } } },
      },
    },
  },
};
const object = (spec: unknown) => ({ apiVersion: 'g/v1', kind: 'K', metadata: { name: 'k' }, spec });

describe('applySchema', () => {
  it('prunes unknown fields (naming them), keeps preserved ones, and applies defaults', () => {
    const result = applySchema(object({ ip: '10.0.0.1', extra: 1, tags: { a: 'b' }, raw: { anything: [1] }, ranges: [{ cidr: 'x', mask: 8 }] }), schema);
    expect(result.causes).toEqual([]);
    expect(result.unknownFields).toEqual(['spec.extra', 'spec.ranges[0].mask']);
    expect(result.object).toEqual(object({ ip: '10.0.0.1', tags: { a: 'b' }, raw: { anything: [1] }, ranges: [{ cidr: 'x' }], policy: 'Immediate' }));
  });

  it('drops nulls of fields that are not nullable, keeps them where they are', () => {
    expect(applySchema(object({ ip: '10.0.0.1', bandwidth: null, note: null }), schema).object.spec).toEqual({ ip: '10.0.0.1', note: null, policy: 'Immediate' });
  });

  it.each([
    [{}, 'spec.ip', 'Required value'],
    [{ ip: 1 }, 'spec.ip', 'must be of type string'],
    [{ ip: 'ten' }, 'spec.ip', "should match '^\\d+\\.\\d+\\.\\d+\\.\\d+$'"],
    [{ ip: '1.1.1.1', policy: 'Sometimes' }, 'spec.policy', 'supported values: "Immediate", "Never"'],
    [{ ip: '1.1.1.1', bandwidth: 0 }, 'spec.bandwidth', 'should be greater than or equal to 1'],
    [{ ip: '1.1.1.1', bandwidth: 1.5 }, 'spec.bandwidth', 'must be of type integer'],
    [{ ip: '1.1.1.1', port: true }, 'spec.port', 'must be an integer or a string'],
    [{ ip: '1.1.1.1', tags: { a: 1 } }, 'spec.tags.a', 'must be of type string'],
    [{ ip: '1.1.1.1', ranges: [{}, {}, {}] }, 'spec.ranges', 'must have at most 2 items'],
  ])('refuses spec %j at %s', (spec, field, message) => {
    const { causes } = applySchema(object(spec), schema);
    expect(causes).toEqual([expect.objectContaining({ field, message: expect.stringContaining(message) })]);
  });

  it('requires a top-level field the schema requires, but never apiVersion, kind or metadata', () => {
    expect(applySchema({ metadata: { name: 'k' } }, { ...schema, required: ['spec', 'metadata', 'kind'] }).causes.map((c) => c.field)).toEqual(['spec']);
  });
});
