// The agent's refusals as the CNI errors a runtime reads.
import { CniCode, CniError } from '../shared/cni.ts';
import { cniCodeOf } from '../shared/cni-codes.ts';
import type { Response } from '../shared/protocol.ts';

/** Throws the CNI error for a refusal; returns the answer when it is a success. */
export function expectOk(answer: Response): Response {
  if (answer.ok) return answer;
  const error = answer.error ?? { code: 'internal' as const, message: 'the agent refused without saying why' };
  // A reason from a newer agent that this plugin does not know is an internal error, its message kept.
  const known = cniCodeOf(error.code);
  // The runtime shows only the message: say what the code means.
  throw new CniError(known, known === CniCode.TryAgainLater ? `${error.message}; try again later` : error.message);
}
