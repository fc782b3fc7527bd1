/**
 * The pool under connection losses, against the real PostgreSQL: a connection that dies while it
 * is checked out does not take the process down (pg's unhandled 'error' event), the statement on
 * it fails, the pool replaces it, and the loss is reported; a server that cannot be reached is
 * waited for only as long as asked.
 */
import net from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, isConnectionLoss, type Db } from '../../core/db/connection';
import { findFreePort } from '../../infra/stack/ports';
import { services } from '../support/harness';

let db: Db;
let admin: Db;
const lost: unknown[] = [];

beforeAll(() => {
  db = createDb(services().databaseUrl, { max: 2, onConnectionLost: (err) => lost.push(err) });
  admin = createDb(services().databaseUrl, { max: 1 });
});

afterAll(async () => {
  await db?.destroy();
  await admin?.destroy();
});

describe('a connection lost while checked out', () => {
  it('fails its own statements only; the pool goes on with a new connection', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const failed = await db
        .connection()
        .execute(async (conn) => {
          const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn);
          // Another session ends this one while it is held between statements, as a server
          // restart or failover does: pg emits 'error' on the checked-out client.
          await sql`select pg_terminate_backend(${rows[0]?.pid ?? 0})`.execute(admin);
          await new Promise((resolve) => setTimeout(resolve, 300));
          await sql`select 1`.execute(conn);
          return null;
        })
        .catch((err: unknown) => err);
      expect(failed).toBeInstanceOf(Error);
      expect(isConnectionLoss(failed)).toBe(true);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
    expect(lost.length).toBeGreaterThan(0);
    // The dead connection is not handed out again.
    for (let i = 0; i < 4; i++) {
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
      expect(rows).toEqual([{ one: 1 }]);
    }
  });
});

describe('a server that cannot be reached', () => {
  let port: number;
  let url: string;
  beforeAll(async () => {
    port = await findFreePort(); // nothing listens there
    url = `postgres://postgres:x@127.0.0.1:${port}/meteor`;
  });

  it('fails at once by default (the CLI)', async () => {
    const cli = createDb(url);
    const started = Date.now();
    await expect(sql`select 1`.execute(cli)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await cli.destroy();
  });

  it('is waited for within reconnectWithinMs (a worker), and used once it answers', async () => {
    const seen: unknown[] = [];
    const real = new URL(services().databaseUrl);
    const worker = createDb(services().databaseUrl.replace(`:${real.port}/`, `:${port}/`), {
      reconnectWithinMs: 10_000,
      onConnectionLost: (err) => seen.push(err),
    });
    const started = Date.now();
    const answer = sql<{ one: number }>`select 1 as one`.execute(worker);
    // The server comes up a second later: a proxy to the real PostgreSQL starts listening there.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const proxy = net.createServer((socket) => {
      const upstream = net.connect(Number(real.port), real.hostname);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    try {
      expect((await answer).rows).toEqual([{ one: 1 }]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every(isConnectionLoss)).toBe(true);
    } finally {
      await worker.destroy();
      proxy.close();
    }
  });

  it('gives up after reconnectWithinMs', async () => {
    const worker = createDb(url, { reconnectWithinMs: 1_000 });
    const started = Date.now();
    await expect(sql`select 1`.execute(worker)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(Date.now() - started).toBeLessThan(3_000);
    await worker.destroy();
  });
});
