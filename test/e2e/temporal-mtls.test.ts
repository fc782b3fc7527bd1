/**
 * Temporal over real mTLS: the dev server has no TLS, so a TLS-terminating proxy stands in front
 * of it and demands a client certificate signed by the test's CA (as a frontend with
 * requireClientAuth does), negotiating HTTP/2 by ALPN. A `meteorctl worker` and
 * `meteorctl campaign launch --wait` both reach Temporal only through it, with certificates made
 * here by the openssl CLI, and a campaign completes; a worker whose certificate another CA signed
 * is turned away at the handshake and says so.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exampleQuestions,
  meteorctl,
  services,
  startHarness,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { spawnHarnessWorker, stopProcesses } from '../support/worker-process';

const run = promisify(execFile);

interface Pem {
  cert: string;
  key: string;
}

/** A self-signed CA (P-256), as PEM files in `dir` named after `name`. */
async function makeCa(dir: string, name: string): Promise<Pem> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  await run('openssl', [
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  return { cert, key };
}

/** A leaf certificate for `cn` signed by `ca`, with the given extensions (PKCS#8 key). */
async function makeLeaf(dir: string, ca: Pem, cn: string, extensions: string[]): Promise<Pem> {
  const cert = path.join(dir, `${cn}.pem`);
  const key = path.join(dir, `${cn}.key`);
  const csr = path.join(dir, `${cn}.csr`);
  const ext = path.join(dir, `${cn}.ext`);
  await writeFile(ext, ['basicConstraints=critical,CA:FALSE', ...extensions].join('\n') + '\n');
  await run('openssl', [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`,
  ]); // prettier-ignore
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${Date.now().toString(16)}`,
    '-days', '1', '-extfile', ext, '-out', cert,
  ]); // prettier-ignore
  return { cert, key };
}

interface ProxyStats {
  /** Client certificates' CNs of the handshakes that passed verification, with their ALPN protocol. */
  authorized: { cn: string; alpn: string | false }[];
  /** Handshakes the proxy refused (no certificate, or one the CA did not sign). */
  rejected: string[];
}

/**
 * A TLS terminator with client-certificate verification in front of `target` (host:port):
 * each verified connection is piped to it as plain TCP.
 */
async function startMtlsProxy(
  server: Pem,
  ca: string,
  target: string,
): Promise<{ port: number; stats: ProxyStats; close(): Promise<void> }> {
  const [host, port] = splitAddress(target);
  const stats: ProxyStats = { authorized: [], rejected: [] };
  const sockets = new Set<net.Socket>();
  const proxy = tls.createServer({
    key: await readFile(server.key),
    cert: await readFile(server.cert),
    ca: await readFile(ca),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
  });
  proxy.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const peer = socket.getPeerCertificate();
    stats.authorized.push({
      cn: socket.authorized ? String(peer.subject?.CN ?? '') : '(unauthorized)',
      alpn: socket.alpnProtocol ?? false,
    });
    const upstream = net.connect(port, host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  // Why: the verification error when a certificate came (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE,
  // for a CA the proxy does not trust), else OpenSSL's ("peer did not return a certificate").
  proxy.on('tlsClientError', (err, socket) => {
    const unverified = socket.authorizationError as Error | string | null | undefined;
    stats.rejected.push(unverified ? String(unverified) : err.message);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    stats,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

const children: ChildProcess[] = [];
let h: Harness;
let proxy: Awaited<ReturnType<typeof startMtlsProxy>>;
let ca: Pem;
let workerCert: Pem;
let cliCert: Pem;
let strangerCert: Pem;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  ca = await makeCa(h.tmp, 'meteor-test-ca');
  const otherCa = await makeCa(h.tmp, 'untrusted-ca');
  const server = await makeLeaf(h.tmp, ca, 'localhost', [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'extendedKeyUsage=serverAuth',
    'keyUsage=critical,digitalSignature',
  ]);
  const clientExt = ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature'];
  workerCert = await makeLeaf(h.tmp, ca, 'meteor-worker', clientExt);
  cliCert = await makeLeaf(h.tmp, ca, 'meteorctl', clientExt);
  strangerCert = await makeLeaf(h.tmp, otherCa, 'stranger', clientExt);
  proxy = await startMtlsProxy(server, ca.cert, services().temporalAddress);
});

afterAll(async () => {
  await stopProcesses(children, 'SIGKILL');
  await proxy?.close();
  await h?.close();
});

/** The variables that point a process at Temporal through the proxy with `client`'s certificate. */
function mtlsEnv(client: Pem | null, serverName?: string): Record<string, string | undefined> {
  return {
    TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`,
    TEMPORAL_TLS_CA: ca.cert,
    TEMPORAL_TLS_CERT: client?.cert,
    TEMPORAL_TLS_KEY: client?.key,
    TEMPORAL_TLS_SERVER_NAME: serverName,
    METEOR_ARTIFACTS_DIR: h.artifactsDir,
  };
}

/** Starts a worker that must fail; resolves to what it printed (spawnWorkerProcess's rejection). */
async function refusedWorker(env: Record<string, string | undefined>, label: string): Promise<string> {
  const err = await spawnHarnessWorker(h, env, { label }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err, `the ${label} started`).not.toBeNull();
  return err?.message ?? '';
}

describe('Temporal over mTLS (a verifying TLS proxy in front of the dev server)', () => {
  it('a worker and meteorctl with CA-signed client certificates run a campaign to completion', async () => {
    // The worker checks the server's certificate against a name (its DNS SAN), meteorctl against
    // the IP address it dials (its IP SAN).
    const worker = await spawnHarnessWorker(h, mtlsEnv(workerCert, 'localhost'), { label: 'mTLS worker' });
    children.push(worker.child);

    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(4));
    const spec = await writeSpec(h, {
      name: 'mtls',
      questions: { train },
      stages: { distill: { batchSize: 2 } },
    });
    const env = Object.fromEntries(
      Object.entries(mtlsEnv(cliCert)).filter((e): e is [string, string] => e[1] !== undefined),
    );
    const r = await meteorctl(h, ['campaign', 'launch', '-f', spec, '--wait', '--json'], { env });
    expect(r.code, `launch failed:\n${r.stderr}\nworker:\n${worker.output()}`).toBe(0);
    const out = JSON.parse(r.stdout) as { campaignId: string; state: string };
    expect(out.state).toBe('completed');

    const byCn = (cn: string) => proxy.stats.authorized.filter((c) => c.cn === cn);
    process.stderr.write(
      `[temporal-mtls] proxy: ${byCn('meteor-worker').length} worker and ${byCn('meteorctl').length} meteorctl ` +
        `connections verified, ${proxy.stats.rejected.length} rejected\n`,
    );
    // Both the worker (its TS client and its Rust core) and meteorctl came through the proxy, each
    // with its own certificate, and every connection spoke HTTP/2 as negotiated by ALPN.
    expect(byCn('meteor-worker').length).toBeGreaterThanOrEqual(2);
    expect(byCn('meteorctl').length).toBeGreaterThanOrEqual(1);
    expect(proxy.stats.authorized.every((c) => c.alpn === 'h2')).toBe(true);
    expect(proxy.stats.authorized.map((c) => c.cn).sort()).toEqual(
      [...byCn('meteor-worker'), ...byCn('meteorctl')].map((c) => c.cn).sort(),
    );
    expect(proxy.stats.rejected).toEqual([]);
  });

  it('workers with an untrusted client certificate, or none, are refused at the handshake, and say so', async () => {
    const rejectedBefore = proxy.stats.rejected.length;
    // Side by side: each waits out its connect deadline.
    const [stranger, anonymous] = await Promise.all([
      refusedWorker(mtlsEnv(strangerCert), 'untrusted worker'),
      refusedWorker(mtlsEnv(null), 'worker without a client certificate'),
    ]);
    process.stderr.write(`[temporal-mtls] ${stranger}\n[temporal-mtls] ${anonymous}\n`);
    for (const message of [stranger, anonymous]) {
      expect(message).toMatch(/exited \(1\) before it started/);
      expect(message).toContain(`meteorctl: Cannot reach Temporal at 127.0.0.1:${proxy.port} over TLS (`);
      expect(message).toContain(`TEMPORAL_TLS_CA=${ca.cert}`);
    }
    expect(stranger).toContain(`TEMPORAL_TLS_CERT=${strangerCert.cert}`);
    expect(anonymous).not.toContain('TEMPORAL_TLS_CERT=');
    expect(anonymous).toContain('whether the server wants a client certificate');
    // The key's file is named; its contents never reach the output.
    const keyBody = (await readFile(strangerCert.key, 'utf8')).split('\n')[1] ?? '';
    expect(keyBody.length).toBeGreaterThan(20);
    expect(stranger).not.toContain(keyBody);
    // The proxy turned both away at the handshake and let neither through.
    process.stderr.write(
      `[temporal-mtls] proxy rejected ${proxy.stats.rejected.length - rejectedBefore} handshakes: ${JSON.stringify(countBy(proxy.stats.rejected.slice(rejectedBefore)))}\n`,
    );
    expect(proxy.stats.rejected.length).toBeGreaterThanOrEqual(rejectedBefore + 2);
    const reasons = proxy.stats.rejected.slice(rejectedBefore);
    expect(reasons).toContainEqual('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(reasons.some((r) => r.includes('peer did not return a certificate'))).toBe(true);
    expect(proxy.stats.authorized.map((c) => c.cn)).not.toContain('stranger');
    expect(proxy.stats.authorized.map((c) => c.cn)).not.toContain('(unauthorized)');
  });
});
