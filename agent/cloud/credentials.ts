// Long-lived cloud keys from a file (--credentials-file): JSON {"secretId", "secretKey"}.
import { readFileSync } from 'node:fs';

export function readCredentials(file: string): { secretId: string; secretKey: string } {
  // Never echo what the file holds: a parse error's message quotes its first bytes, a secret key's among them.
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--credentials-file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`--credentials-file ${file} is not valid JSON (its content is not shown: it holds secrets)`);
  }
  const { secretId, secretKey } = (value ?? {}) as Record<string, unknown>;
  if (typeof secretId !== 'string' || typeof secretKey !== 'string' || !secretId || !secretKey) {
    throw new Error(`--credentials-file ${file} must hold non-empty "secretId" and "secretKey"`);
  }
  return { secretId, secretKey };
}
