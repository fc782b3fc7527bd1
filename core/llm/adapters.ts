/**
 * Serving fine-tuned adapters on the weak endpoint (vLLM's runtime LoRA API), and healing a
 * served adapter the server forgot: vLLM drops runtime-loaded adapters when it restarts, and
 * the next call names a model it no longer knows (404). The adapter is then loaded again from
 * its recorded checkpoint and the call retried, instead of failing the campaign.
 */
import type { Db } from '../db/connection';
import { scrubSecrets } from '../secrets';
import type { CampaignSpec } from '../spec';
import { resolveApiKey, type Endpoint } from './gateway';

/** vLLM's runtime LoRA API answers 400 when the adapter is loaded already: that is success. */
function alreadyLoaded(text: string): boolean {
  return /already (been )?loaded/i.test(text);
}

/** The adapter's path as the vLLM host sees it: the first matching `deploy.pathMap` prefix is replaced. */
export function mapAdapterPath(pathMap: CampaignSpec['deploy']['pathMap'], adapterPath: string): string {
  for (const { from, to } of pathMap) {
    const prefix = from.endsWith('/') ? from : `${from}/`;
    if (adapterPath === from || adapterPath.startsWith(prefix)) {
      return `${to.replace(/\/$/, '')}${adapterPath.slice(from.replace(/\/$/, '').length)}`;
    }
  }
  return adapterPath;
}

export async function loadLoraAdapter(
  weak: Endpoint,
  name: string,
  adapterPath: string,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const res = await fetch(`${weak.baseURL.replace(/\/$/, '')}/load_lora_adapter`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${resolveApiKey(weak, env)}` },
    body: JSON.stringify({ lora_name: name, lora_path: adapterPath }),
  });
  const text = await res.text();
  if (!res.ok && !alreadyLoaded(text)) {
    // The server's text may echo the key (as OpenAI's 401s do): scrub it before it goes anywhere.
    const detail = scrubSecrets(text.slice(0, 500), [resolveApiKey(weak, env)]);
    throw new Error(
      `loading adapter ${name} from ${adapterPath} on ${scrubSecrets(weak.baseURL, [])} failed (${res.status}): ${detail}`,
    );
  }
}

/** What the gateway asks when a model is not found: can it be served again? */
export interface ModelHealer {
  /** Loads `model` again if it is an adapter this campaign registered; true when it did. */
  reload(campaignId: string, ep: Endpoint, model: string): Promise<boolean>;
}

export function adapterHealer(
  db: Db,
  env: NodeJS.ProcessEnv,
  specOf: (campaignId: string) => Promise<CampaignSpec>,
): ModelHealer {
  return {
    async reload(campaignId, ep, model) {
      if (ep.role !== 'weak') return false;
      const spec = await specOf(campaignId);
      if (spec.deploy.type !== 'vllm-lora') return false;
      const row = await db
        .selectFrom('model_versions')
        .leftJoin('finetune_jobs', 'finetune_jobs.id', 'model_versions.finetune_job_id')
        .select(['model_versions.checkpoint_uri', 'finetune_jobs.output_dir'])
        .where('model_versions.campaign_id', '=', campaignId)
        .where('model_versions.served_model', '=', model)
        .where('model_versions.checkpoint_uri', 'is not', null)
        .executeTakeFirst();
      if (!row?.checkpoint_uri) return false;
      // vLLM loads adapters from its own disk: a checkpoint kept in an object store is loaded
      // from the job's output folder, as it was when first deployed.
      const checkpoint = row.checkpoint_uri.startsWith('file://')
        ? row.checkpoint_uri.replace(/^file:\/\//, '')
        : row.output_dir;
      if (!checkpoint) return false;
      await loadLoraAdapter(ep, model, mapAdapterPath(spec.deploy.pathMap, checkpoint), env);
      return true;
    },
  };
}
