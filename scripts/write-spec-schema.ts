/** Writes schemas/campaign.schema.json from the zod spec, for editors (yaml-language-server). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CampaignSpecSchema } from '../core/spec';

const out = path.resolve(__dirname, '..', 'schemas', 'campaign.schema.json');
mkdirSync(path.dirname(out), { recursive: true });
const schema = z.toJSONSchema(CampaignSpecSchema, { io: 'input', unrepresentable: 'any' });
writeFileSync(out, `${JSON.stringify({ title: 'meteor campaign spec', ...schema }, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
