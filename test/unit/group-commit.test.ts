/**
 * Group commit (core/db/group-commit.ts): an idle system pays no wait, items arriving while a batch
 * is written share the next one, and `minIntervalMs` holds the next batch back after one ended so
 * that more items share it — never an item that arrives after a quiet spell. With `isolate`, a
 * value the database refuses fails its own item only (real PostgreSQL).
 */
import { sql } from 'kysely';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createDb, isDataException } from '../../core/db/connection';
import { GroupCommit } from '../../core/db/group-commit';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A GroupCommit whose writes take `writeMs`, recording each batch and when it started and ended. */
function recording(opts: { minIntervalMs?: number }, writeMs = 20) {
  const batches: Array<{ items: number[]; start: number; end: number }> = [];
  const gc = new GroupCommit<number, number>(async (items) => {
    const start = Date.now();
    await sleep(writeMs);
    batches.push({ items, start, end: Date.now() });
    return items.map((i) => i * 10);
  }, opts);
  return { gc, batches };
}

describe('GroupCommit', () => {
  it('writes the first item at once, and those arriving meanwhile together next', async () => {
    const { gc, batches } = recording({});
    const t0 = Date.now();
    const first = gc.submit(1);
    await sleep(5);
    const rest = [2, 3, 4].map((i) => gc.submit(i));
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40]);
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4]]);
    expect(batches[0]!.start - t0).toBeLessThan(15);
  });

  it('with minIntervalMs, holds the next batch back after one ended, gathering what arrives', async () => {
    const { gc, batches } = recording({ minIntervalMs: 60 });
    const first = gc.submit(1);
    await sleep(5);
    const during = gc.submit(2); // while the first batch is written
    await first;
    await sleep(20); // after it ended, within the interval
    const after = gc.submit(3);
    expect(await Promise.all([during, after])).toEqual([20, 30]);
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3]]);
    expect(batches[1]!.start - batches[0]!.end).toBeGreaterThanOrEqual(55);
  });

  it('with minIntervalMs, writes an item after a quiet spell at once', async () => {
    const { gc, batches } = recording({ minIntervalMs: 40 });
    await gc.submit(1);
    await sleep(60);
    const t = Date.now();
    await gc.submit(2);
    expect(batches.map((b) => b.items)).toEqual([[1], [2]]);
    expect(batches[1]!.start - t).toBeLessThan(15);
  });

  it('fails every item of a batch whose write fails, and goes on with the next', async () => {
    let calls = 0;
    const gc = new GroupCommit<number, number>(async (items) => {
      calls++;
      await sleep(10);
      if (calls === 2) throw new Error('boom');
      return items;
    });
    const first = gc.submit(1);
    const failing = [gc.submit(2), gc.submit(3)].map((p) =>
      p.then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    await first;
    expect(await Promise.all(failing)).toEqual(['boom', 'boom']);
    expect(await gc.submit(4)).toBe(4);
  });

  describe('with isolate, against PostgreSQL', () => {
    const db = createDb(inject('databaseUrl'), { max: 2 });
    afterAll(() => db.destroy());
    /** Casts each item to jsonb in one statement: a lone surrogate's escape is refused (22P02). */
    const jsonb = (isolate?: (err: unknown) => boolean) => {
      const statements: string[][] = [];
      const gc = new GroupCommit<string, string>(
        async (items) => {
          statements.push(items);
          const { rows } = await sql<{ j: string }>`
            select (t.j::jsonb)::text as j from unnest(${items}::text[]) with ordinality as t(j, n)
            order by t.n`.execute(db);
          return rows.map((r) => r.j);
        },
        isolate ? { isolate } : {},
      );
      return { gc, statements };
    };
    const items = ['"a"', '"b"', JSON.stringify('c\uD800'), '"d"', '"e"'];
    const settle = (gc: GroupCommit<string, string>) =>
      Promise.all(
        items.map((i) =>
          gc.submit(i).then(
            (j) => j,
            (e: unknown) => (isDataException(e) ? `refused ${e.code}` : `other: ${String(e)}`),
          ),
        ),
      );

    it('fails only the item whose value is refused; the others of its statement are written', async () => {
      const { gc, statements } = jsonb(isDataException);
      expect(await settle(gc)).toEqual(['"a"', '"b"', 'refused 22P02', '"d"', '"e"']);
      // The first went alone, the rest together, then one by one.
      expect(statements.slice(0, 2)).toEqual([items.slice(0, 1), items.slice(1)]);
      expect(statements.slice(2)).toEqual(items.slice(1).map((i) => [i]));
    });

    it('without it, fails every item of that statement', async () => {
      const { gc } = jsonb();
      expect(await settle(gc)).toEqual(['"a"', ...Array(4).fill('refused 22P02')]);
    });
  });
});
