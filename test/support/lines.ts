/** Evolution lines in tests: a LINE.yaml next to a harness, their iterations, and cleaning up. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { deleteLine } from '../../client/lines';
import { loadLineSpecFile, type LoadedLineSpec } from '../../core/line-spec-file';
import type { Harness } from './harness';

/** Writes `<name>.yaml` over `campaign` in the harness's scratch folder (every 1h unless `extra` says) and loads it. */
export async function writeLineSpec(
  h: Pick<Harness, 'tmp'>,
  name: string,
  campaign: string,
  extra: Record<string, unknown> = {},
): Promise<LoadedLineSpec> {
  const file = path.join(h.tmp, `${name}.yaml`);
  await writeFile(
    file,
    stringify({ name, campaign, schedule: { every: '1h' }, promotion: { minHeldOut: 10 }, ...extra }),
  );
  return loadLineSpecFile(file);
}

export function lineIterations(h: Pick<Harness, 'clients'>, line: string) {
  return h.clients.db
    .selectFrom('line_iterations')
    .selectAll()
    .where('line', '=', line)
    .orderBy('iteration')
    .execute();
}

/** Deletes every line still scheduled (so nothing fires after the test), then closes the harness. */
export async function closeWithLines(h: Harness | undefined): Promise<void> {
  if (!h) return;
  const live = await h.clients.db
    .selectFrom('lines')
    .select('name')
    .where('deleted_at', 'is', null)
    .execute();
  for (const row of live) await deleteLine(h.clients, row.name).catch(() => undefined);
  await h.close();
}
