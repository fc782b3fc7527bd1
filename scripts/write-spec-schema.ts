/**
 * Writes schemas/campaign.schema.json and schemas/line.schema.json from the zod specs, for
 * editors (yaml-language-server).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LineSpecSchema } from '../core/line-spec';
import { CampaignSpecSchema } from '../core/spec';

const dir = path.resolve(__dirname, '..', 'schemas');
mkdirSync(dir, { recursive: true });

function write(file: string, title: string, zodSchema: z.ZodType): void {
  const out = path.join(dir, file);
  const schema = z.toJSONSchema(zodSchema, { io: 'input', unrepresentable: 'any' });
  writeFileSync(out, `${JSON.stringify({ title, ...schema }, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

write('campaign.schema.json', 'meteor campaign spec', CampaignSpecSchema);
write('line.schema.json', 'meteor evolution line spec', LineSpecSchema);
