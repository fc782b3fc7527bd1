/**
 * Command line for the model simulator:
 *   tsx infra/sim/main.ts --port 8787 --latency-ms 100 --fail-rate 0 \
 *     --knowledge examples/kubernetes-ops/train.jsonl,examples/kubernetes-ops/eval.jsonl
 * Other flags: --fault-kinds 429,500,timeout --hang-ms 30000 --api-key KEY --seed 1 --reject-beam-search
 *   --judge-bias first|second --malformed-rate assessment_verdict=0.5,pairwise_judgment=0.2
 *   --batch-validating-ms 20 --batch-in-progress-ms 100 --batch-finalizing-ms 20
 *   --batch-fail-rate 0 --batch-expire-after-ms 86400000   (the Batch API, batches.ts)
 *   --refuse-temperature MODEL,... --require-max-completion-tokens MODEL,...
 *   --no-json-schema MODEL,... --no-guided-json MODEL,...   (providers' quirks, quirks.ts)
 *   --nul-in-reply MODEL,... --lone-surrogate-in-reply MODEL,...
 *     (plain-text replies carry a U+0000 / half a surrogate pair, quirks.ts)
 */
import { parseArgs } from 'node:util';
import type { FaultKind } from './protocol';
import { FaultKind as FaultKindSchema } from './protocol';
import type { BatchConfig, ModelQuirks, QuirksByModel } from './server';
import { startSimServer } from './server';

function num(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new Error(`--${flag} must be a number, got '${raw}'`);
  return v;
}

const list = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8787' },
      'latency-ms': { type: 'string' },
      'fail-rate': { type: 'string' },
      'fault-kinds': { type: 'string' },
      'hang-ms': { type: 'string' },
      knowledge: { type: 'string' },
      'api-key': { type: 'string' },
      seed: { type: 'string' },
      'reject-beam-search': { type: 'boolean', default: false },
      'judge-bias': { type: 'string' },
      'malformed-rate': { type: 'string' },
      'batch-validating-ms': { type: 'string' },
      'batch-in-progress-ms': { type: 'string' },
      'batch-finalizing-ms': { type: 'string' },
      'batch-fail-rate': { type: 'string' },
      'batch-expire-after-ms': { type: 'string' },
      'refuse-temperature': { type: 'string' },
      'require-max-completion-tokens': { type: 'string' },
      'no-json-schema': { type: 'string' },
      'no-guided-json': { type: 'string' },
      'nul-in-reply': { type: 'string' },
      'lone-surrogate-in-reply': { type: 'string' },
    },
    strict: true,
  });
  const faultKinds: FaultKind[] = list(values['fault-kinds']).map((k) => {
    const r = FaultKindSchema.safeParse(k);
    if (!r.success) throw new Error(`--fault-kinds: unknown kind '${k}' (use 429, 500, timeout)`);
    return r.data;
  });
  const judgeBias = values['judge-bias'];
  if (judgeBias !== undefined && judgeBias !== 'first' && judgeBias !== 'second')
    throw new Error(`--judge-bias must be 'first' or 'second', got '${judgeBias}'`);
  const malformedRate: Record<string, number> = {};
  for (const entry of list(values['malformed-rate'])) {
    const [name, rate] = entry.split('=');
    if (!name || rate === undefined)
      throw new Error(`--malformed-rate: expected SCHEMA=RATE, got '${entry}'`);
    malformedRate[name] = num('malformed-rate', rate, 0);
  }
  // Only the flags given: the others keep the Batch API's defaults (batches.ts).
  const batches: Partial<BatchConfig> = {};
  const batchFlags = {
    validatingMs: 'batch-validating-ms',
    inProgressMs: 'batch-in-progress-ms',
    finalizingMs: 'batch-finalizing-ms',
    failRate: 'batch-fail-rate',
    expireAfterMs: 'batch-expire-after-ms',
  } as const;
  for (const [key, flag] of Object.entries(batchFlags) as Array<[keyof BatchConfig, keyof typeof values]>) {
    const raw = values[flag];
    if (typeof raw === 'string') batches[key] = num(flag, raw, 0);
  }
  // Each quirk flag lists the served models that have it (a model may be named in several).
  const quirks: QuirksByModel = {};
  const quirkFlags = {
    refuseTemperature: 'refuse-temperature',
    requireMaxCompletionTokens: 'require-max-completion-tokens',
    noJsonSchema: 'no-json-schema',
    noGuidedJson: 'no-guided-json',
    nulInReply: 'nul-in-reply',
    loneSurrogateInReply: 'lone-surrogate-in-reply',
  } as const satisfies Record<keyof ModelQuirks, keyof typeof values>;
  for (const [quirk, flag] of Object.entries(quirkFlags) as Array<[keyof ModelQuirks, keyof typeof values]>) {
    const raw = values[flag];
    for (const model of list(typeof raw === 'string' ? raw : undefined))
      quirks[model] = { ...quirks[model], [quirk]: true };
  }
  const apiKey = values['api-key'] ?? process.env['METEOR_SIM_API_KEY'];
  const server = await startSimServer({
    port: num('port', values.port, 8787),
    latencyMs: num('latency-ms', values['latency-ms'], 0),
    failRate: num('fail-rate', values['fail-rate'], 0),
    hangMs: num('hang-ms', values['hang-ms'], 30000),
    knowledgeFiles: list(values.knowledge),
    seed: num('seed', values.seed, 1),
    rejectBeamSearch: values['reject-beam-search'] ?? false,
    ...(judgeBias ? { judgeBias } : {}),
    malformedRate,
    batches,
    quirks,
    ...(faultKinds.length > 0 ? { faultKinds } : {}),
    ...(apiKey ? { apiKey } : {}),
  });
  process.stdout.write(`meteor model simulator (simulation, not real models) listening on ${server.url}\n`);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`meteor model simulator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
