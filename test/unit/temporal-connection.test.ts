/**
 * The Temporal connection options each environment builds: plain, API key (Temporal Cloud), TLS
 * with the system's roots, mTLS for a self-hosted cluster — the object the SDK's Connection and
 * NativeConnection take, and the error a failed connect becomes. (A real mTLS handshake:
 * test/e2e/temporal-mtls.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { dbPoolMax } from '../../cli/worker';
import { temporalConnectError, temporalConnectionOptions } from '../../core/temporal-connection';
import { UserError } from '../../core/errors';
import { DEFAULT_DB_POOL_MAX } from '../../workers/defaults';

const files: Record<string, string> = {
  '/etc/meteor/client.pem': 'CLIENT CERT',
  '/etc/meteor/client.key': 'CLIENT KEY',
  '/etc/meteor/ca.pem': 'CA CERT',
};
const readFile = (file: string): Buffer => {
  const text = files[file];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
  return Buffer.from(text);
};

describe('temporalConnectionOptions', () => {
  it('is plain gRPC with nothing set', () => {
    expect(temporalConnectionOptions('temporal:7233', {}, readFile)).toEqual({ address: 'temporal:7233' });
  });

  it('turns on TLS with an API key (Temporal Cloud)', () => {
    expect(
      temporalConnectionOptions('ns.acct.tmprl.cloud:7233', { TEMPORAL_API_KEY: 'k' }, readFile),
    ).toEqual({
      address: 'ns.acct.tmprl.cloud:7233',
      tls: true,
      apiKey: 'k',
    });
  });

  it('builds mTLS from the certificate, key, CA and server name files', () => {
    const opts = temporalConnectionOptions(
      'temporal.internal:7233',
      {
        TEMPORAL_TLS_CERT: '/etc/meteor/client.pem',
        TEMPORAL_TLS_KEY: '/etc/meteor/client.key',
        TEMPORAL_TLS_CA: '/etc/meteor/ca.pem',
        TEMPORAL_TLS_SERVER_NAME: 'temporal-frontend',
      },
      readFile,
    );
    expect(opts).toEqual({
      address: 'temporal.internal:7233',
      tls: {
        serverNameOverride: 'temporal-frontend',
        serverRootCACertificate: Buffer.from('CA CERT'),
        clientCertPair: { crt: Buffer.from('CLIENT CERT'), key: Buffer.from('CLIENT KEY') },
      },
    });
  });

  it('uses TLS with the system roots on TEMPORAL_TLS=true, and a private CA alone', () => {
    expect(temporalConnectionOptions('t:7233', { TEMPORAL_TLS: 'true' }, readFile)).toEqual({
      address: 't:7233',
      tls: {},
    });
    expect(temporalConnectionOptions('t:7233', { TEMPORAL_TLS_CA: '/etc/meteor/ca.pem' }, readFile)).toEqual({
      address: 't:7233',
      tls: { serverRootCACertificate: Buffer.from('CA CERT') },
    });
    expect(temporalConnectionOptions('t:7233', { TEMPORAL_TLS: 'false' }, readFile)).toEqual({
      address: 't:7233',
    });
  });

  it('keeps an API key next to a private CA', () => {
    expect(
      temporalConnectionOptions(
        't:7233',
        { TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_CA: '/etc/meteor/ca.pem' },
        readFile,
      ),
    ).toEqual({ address: 't:7233', apiKey: 'k', tls: { serverRootCACertificate: Buffer.from('CA CERT') } });
  });

  it('names the variable to fix', () => {
    expect(() =>
      temporalConnectionOptions('t:7233', { TEMPORAL_TLS_CERT: '/etc/meteor/client.pem' }, readFile),
    ).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together.*TEMPORAL_TLS_KEY is not set/);
    expect(() => temporalConnectionOptions('t:7233', { TEMPORAL_TLS_CA: '/nope.pem' }, readFile)).toThrow(
      'TEMPORAL_TLS_CA: cannot read /nope.pem (no such file)',
    );
    expect(() => temporalConnectionOptions('t:7233', { TEMPORAL_TLS: 'maybe' }, readFile)).toThrow(
      /TEMPORAL_TLS: 'maybe' is not true or false/,
    );
  });
});

describe('dbPoolMax', () => {
  it('takes the flag, then METEOR_DB_POOL_MAX, then the default', () => {
    expect(dbPoolMax('3', { METEOR_DB_POOL_MAX: '7' })).toBe(3);
    expect(dbPoolMax(undefined, { METEOR_DB_POOL_MAX: '7' })).toBe(7);
    expect(dbPoolMax(undefined, {})).toBe(DEFAULT_DB_POOL_MAX);
    expect(() => dbPoolMax('0', {})).toThrow(/--db-pool-max: '0' is not a whole number/);
    expect(() => dbPoolMax(undefined, { METEOR_DB_POOL_MAX: 'lots' })).toThrow(/METEOR_DB_POOL_MAX: 'lots'/);
  });
});

describe('temporalConnectError', () => {
  const failed = new Error('Failed to connect before the deadline');

  it('names the address and the SDK reason, and no TLS when none is set', () => {
    const err = temporalConnectError('temporal:7233', failed, {});
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe('Cannot reach Temporal at temporal:7233: Failed to connect before the deadline');
  });

  it('names the TLS variables in use by their files, not their contents', () => {
    const env = {
      TEMPORAL_TLS_CERT: '/etc/meteor/client.pem',
      TEMPORAL_TLS_KEY: '/etc/meteor/client.key',
      TEMPORAL_TLS_CA: '',
    };
    const { message } = temporalConnectError('t:7233', failed, env);
    expect(message).toContain(
      'at t:7233 over TLS (TEMPORAL_TLS_CERT=/etc/meteor/client.pem, TEMPORAL_TLS_KEY=/etc/meteor/client.key)',
    );
    expect(message).toContain('the server trusts the CA that signed TEMPORAL_TLS_CERT');
    expect(message).not.toContain('TEMPORAL_TLS_CA=');
    expect(message).not.toContain('CLIENT KEY');
  });

  it('says an API key was used, without the key', () => {
    const { message } = temporalConnectError('ns.acct.tmprl.cloud:7233', failed, {
      TEMPORAL_API_KEY: 'secret',
    });
    expect(message).toContain('over TLS with TEMPORAL_API_KEY');
    expect(message).not.toContain('secret');
  });
});
