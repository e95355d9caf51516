// TC3-HMAC-SHA256 signature checking, against the world's key pairs and the temporary keys the
// metadata service hands out.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { fail } from './errors.ts';
import type { Clock } from './model.ts';

interface KeyPair {
  secretKey: string;
  /** temporary keys only: the token that must come with them, and when they stop working (ms) */
  token?: string;
  expiresAt?: number;
}

export interface TemporaryKeys {
  TmpSecretId: string;
  TmpSecretKey: string;
  Token: string;
  /** seconds since the epoch */
  ExpiredTime: number;
  Expiration: string;
}

export interface SignedRequest {
  authorization: string | undefined;
  /** the Host header; the port is ignored, as the SDK signs the host name alone */
  host: string | undefined;
  contentType: string | undefined;
  timestamp: string | undefined;
  token: string | undefined;
  body: Buffer;
}

export class KeyStore {
  private readonly keys = new Map<string, KeyPair>();
  /** temporary key pairs handed out so far (a CVM role's, through the metadata service) */
  issued = 0;

  constructor(
    pairs: Array<{ secretId: string; secretKey: string }>,
    private readonly clock: Clock,
    private readonly ttlSec: number,
  ) {
    for (const pair of pairs) this.keys.set(pair.secretId, { secretKey: pair.secretKey });
  }

  issueTemporary(): TemporaryKeys {
    const secretId = `AKIDtmp${randomBytes(12).toString('hex')}`;
    const secretKey = randomBytes(16).toString('hex');
    const token = randomBytes(24).toString('base64url');
    const expiresAt = this.clock.now() + this.ttlSec * 1000;
    this.keys.set(secretId, { secretKey, token, expiresAt });
    this.issued++;
    return {
      TmpSecretId: secretId,
      TmpSecretKey: secretKey,
      Token: token,
      ExpiredTime: Math.floor(expiresAt / 1000),
      Expiration: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
  }

  /** Checks a request's signature; returns the service named in its credential scope. */
  verify(req: SignedRequest, maxSkewSec: number): string {
    const auth = parseAuthorization(req.authorization);
    const timestamp = Number(req.timestamp);
    if (!req.timestamp || !Number.isInteger(timestamp)) throw fail('MissingParameter', 'X-TC-Timestamp is missing or not a whole number');
    const skew = Math.abs(this.clock.now() / 1000 - timestamp);
    if (skew > maxSkewSec) {
      throw fail('AuthFailure.SignatureExpire', `X-TC-Timestamp ${timestamp} is ${Math.round(skew)} s from the server's clock (at most ${maxSkewSec} s)`);
    }
    if (auth.date !== utcDate(timestamp)) {
      throw fail('AuthFailure.SignatureFailure', `credential date ${auth.date} does not match X-TC-Timestamp ${timestamp}`);
    }
    const key = this.keys.get(auth.secretId);
    if (!key) throw fail('AuthFailure.SecretIdNotFound', `SecretId ${auth.secretId} does not exist`);
    if (key.token !== undefined) {
      if (req.token !== key.token) throw fail('AuthFailure.TokenFailure', `temporary key ${auth.secretId} needs its X-TC-Token`);
      if ((key.expiresAt ?? 0) <= this.clock.now()) throw fail('AuthFailure.TokenFailure', `temporary key ${auth.secretId} has expired`);
    }
    const expected = signature({ ...auth, secretKey: key.secretKey, timestamp, host: (req.host ?? '').replace(/:\d+$/, ''), contentType: req.contentType ?? '', body: req.body });
    const given = Buffer.from(auth.signature, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected, 'utf8'))) {
      throw fail('AuthFailure.SignatureFailure', 'the request signature does not match; check the SecretKey and what was signed');
    }
    return auth.service;
  }
}

interface Authorization {
  secretId: string;
  date: string;
  service: string;
  signedHeaders: string;
  signature: string;
}

const AUTH = /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([^/]+)\/tc3_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

function parseAuthorization(header: string | undefined): Authorization {
  if (!header) throw fail('AuthFailure.InvalidAuthorization', 'the Authorization header is missing');
  const m = AUTH.exec(header);
  if (!m) throw fail('AuthFailure.InvalidAuthorization', 'the Authorization header is not in TC3-HMAC-SHA256 form');
  const [, secretId, date, service, signedHeaders, sig] = m as unknown as [string, string, string, string, string, string];
  if (signedHeaders !== 'content-type;host') {
    throw fail('AuthFailure.InvalidAuthorization', `SignedHeaders "${signedHeaders}" is not supported; sign content-type;host`);
  }
  return { secretId, date, service, signedHeaders, signature: sig };
}

function signature(p: Authorization & { secretKey: string; timestamp: number; host: string; contentType: string; body: Buffer }): string {
  const canonical = ['POST', '/', '', `content-type:${p.contentType}\nhost:${p.host}\n`, p.signedHeaders, sha256Hex(p.body)].join('\n');
  const scope = `${p.date}/${p.service}/tc3_request`;
  const toSign = ['TC3-HMAC-SHA256', String(p.timestamp), scope, sha256Hex(canonical)].join('\n');
  const kDate = hmac(`TC3${p.secretKey}`, p.date);
  const kService = hmac(kDate, p.service);
  const kSigning = hmac(kService, 'tc3_request');
  return createHmac('sha256', kSigning).update(toSign).digest('hex');
}

function hmac(key: string | Buffer, message: string): Buffer {
  return createHmac('sha256', key).update(message).digest();
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function utcDate(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}
