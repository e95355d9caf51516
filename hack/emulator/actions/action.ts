// What an action is: its service, the parameters it takes (a strict zod schema, so unknown and mistyped
// parameters are refused before it runs), and the code that carries it out against the model.
import { z } from 'zod';
import type { CloudModel, Task } from '../model.ts';

export interface ActionContext {
  model: CloudModel;
  requestId: string;
  /**
   * Starts an asynchronous operation: `holds` stay locked (a second change is refused) until `work` runs,
   * after the world's task latency. The task's id is this call's RequestId.
   */
  runAsync(holds: Array<{ id: string; busyWith?: string | undefined }>, work: () => void): Task;
}

export interface Action<S extends z.ZodType = z.ZodType> {
  service: 'vpc' | 'cvm';
  params: S;
  /** whether a ClientToken makes a retry return the first answer instead of acting again */
  clientToken?: boolean;
  run(ctx: ActionContext, params: z.infer<S>): Record<string, unknown>;
}

export function action<S extends z.ZodType>(definition: Action<S>): Action {
  return definition as unknown as Action;
}

// ---- parameter shapes shared by several actions

export const Filters = z
  .array(z.strictObject({ Name: z.string(), Values: z.array(z.string()) }))
  .max(10)
  .optional();

export const Tags = z.array(z.strictObject({ Key: z.string().min(1).max(127), Value: z.string().max(255).optional() })).max(50).optional();

export const PrivateIpSpecs = z.array(
  z.strictObject({
    PrivateIpAddress: z.string(),
    Primary: z.boolean().optional(),
    PublicIpAddress: z.string().optional(),
    AddressId: z.string().optional(),
    Description: z.string().optional(),
    IsWanIpBlocked: z.boolean().optional(),
    State: z.string().optional(),
    QosLevel: z.string().optional(),
  }),
);

export const ClientToken = z.string().max(64).optional();

/** Offset/Limit paging of the Describe actions; Limit defaults to 20 and may not pass 100. */
export function page<T>(items: T[], offset = 0, limit = 20): T[] {
  return items.slice(offset, offset + limit);
}

// Some Describe actions type Offset/Limit as strings, others as numbers: both forms are accepted, nothing else.
const count = z.union([z.number().int(), z.string().regex(/^\d+$/, 'must be a whole number').transform(Number)]);
export const Offset = count.pipe(z.number().nonnegative()).optional();
export const Limit = count.pipe(z.number().min(1).max(100)).optional();
