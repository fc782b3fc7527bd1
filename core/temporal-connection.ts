/**
 * How to reach Temporal, for clients and workers alike: plain gRPC for a local or in-cluster
 * server; TLS with API-key auth when TEMPORAL_API_KEY is set (Temporal Cloud); TLS, with a
 * client certificate for mTLS, for a self-hosted cluster:
 *   TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY   client certificate and key (PEM files; mTLS), both or neither
 *   TEMPORAL_TLS_CA                       the CA that signed the server's certificate (PEM file;
 *                                         default: the system's roots)
 *   TEMPORAL_TLS_SERVER_NAME              the name to check the server's certificate against
 *                                         (default: the host of TEMPORAL_ADDRESS)
 *   TEMPORAL_TLS=true                     TLS with none of the above
 * Any of them turns TLS on. Keys and certificates are read from their files by name and go
 * nowhere else.
 */
import { readFileSync } from 'node:fs';
import { UserError, fileProblem } from './errors';

/** The TLS part of Temporal's connection options (client and worker connections take the same). */
export interface TemporalTlsOptions {
  serverNameOverride?: string;
  serverRootCACertificate?: Buffer;
  clientCertPair?: { crt: Buffer; key: Buffer };
}

export interface TemporalConnectionOptions {
  address: string;
  tls?: boolean | TemporalTlsOptions;
  apiKey?: string;
}

/** The environment variables that configure TLS, for docs and error messages. */
export const TEMPORAL_TLS_ENV = [
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'TEMPORAL_TLS_CA',
  'TEMPORAL_TLS_SERVER_NAME',
] as const;

function readPem(env: NodeJS.ProcessEnv, name: string, readFile: (file: string) => Buffer): Buffer {
  const file = env[name] as string;
  try {
    return readFile(file);
  } catch (err) {
    throw new UserError(`${name}: cannot read ${file} (${fileProblem(err)})`);
  }
}

/** TLS settings from the environment, or null when none is set. */
export function temporalTlsOptions(
  env: NodeJS.ProcessEnv = process.env,
  readFile: (file: string) => Buffer = (file) => readFileSync(file),
): TemporalTlsOptions | null {
  const set = (name: string) => (env[name] ?? '') !== '';
  const flag = (env.TEMPORAL_TLS ?? '').toLowerCase();
  if (flag !== '' && !['1', 'true', 'yes', '0', 'false', 'no'].includes(flag)) {
    throw new UserError(`TEMPORAL_TLS: '${env.TEMPORAL_TLS}' is not true or false`);
  }
  const wanted = ['1', 'true', 'yes'].includes(flag) || TEMPORAL_TLS_ENV.slice(1).some(set);
  if (!wanted) return null;
  if (set('TEMPORAL_TLS_CERT') !== set('TEMPORAL_TLS_KEY')) {
    throw new UserError(
      `TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS): ${set('TEMPORAL_TLS_CERT') ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT'} is not set`,
    );
  }
  return {
    ...(set('TEMPORAL_TLS_SERVER_NAME')
      ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME as string }
      : {}),
    ...(set('TEMPORAL_TLS_CA') ? { serverRootCACertificate: readPem(env, 'TEMPORAL_TLS_CA', readFile) } : {}),
    ...(set('TEMPORAL_TLS_CERT')
      ? {
          clientCertPair: {
            crt: readPem(env, 'TEMPORAL_TLS_CERT', readFile),
            key: readPem(env, 'TEMPORAL_TLS_KEY', readFile),
          },
        }
      : {}),
  };
}

export function temporalConnectionOptions(
  address: string,
  env: NodeJS.ProcessEnv = process.env,
  readFile?: (file: string) => Buffer,
): TemporalConnectionOptions {
  const apiKey = env.TEMPORAL_API_KEY;
  const tls = temporalTlsOptions(env, readFile);
  if (apiKey) return { address, tls: tls ?? true, apiKey };
  return tls ? { address, tls } : { address };
}

/**
 * A failed connect, as the operator needs it: the address and, when TLS was on, which
 * TEMPORAL_TLS_* variables were set (names and file paths, never contents) — a refused
 * handshake reaches the SDK only as "Failed to connect before the deadline".
 */
export function temporalConnectError(
  address: string,
  err: unknown,
  env: NodeJS.ProcessEnv = process.env,
): UserError {
  const reason = err instanceof Error ? err.message : String(err);
  const used = TEMPORAL_TLS_ENV.filter((name) => (env[name] ?? '') !== '').map(
    (name) => `${name}=${env[name]}`,
  );
  const how = env.TEMPORAL_API_KEY
    ? ' over TLS with TEMPORAL_API_KEY'
    : used.length > 0
      ? ` over TLS (${used.join(', ')})`
      : '';
  const hint =
    used.length === 0
      ? ''
      : (env.TEMPORAL_TLS_CERT ?? '') !== ''
        ? '; check that the server trusts the CA that signed TEMPORAL_TLS_CERT, that TEMPORAL_TLS_CA signed the server certificate, and that its name matches TEMPORAL_TLS_SERVER_NAME or the address'
        : '; check that TEMPORAL_TLS_CA signed the server certificate and that its name matches TEMPORAL_TLS_SERVER_NAME or the address, and whether the server wants a client certificate (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY)';
  return new UserError(`Cannot reach Temporal at ${address}${how}: ${reason}${hint}`);
}

/**
 * A connection failure that means nothing answers at the address yet (refused, no route, a name
 * that does not resolve for now) — waited for at a worker's start — rather than TLS or auth.
 */
export function isTemporalUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /tcp connect error|ConnectionRefused|Connection refused|ECONNREFUSED|HostUnreachable|NetworkUnreachable/i.test(
    err.message,
  );
}

/** The SDK's transport error in a few words ("Connection refused"), else its message. */
export function temporalFailureReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const inner = [...message.matchAll(/message: "([^"]+)"/g)].pop()?.[1];
  return inner ?? message;
}
