/**
 * deploy: manual — the user serves each fine-tuned checkpoint and names it with `meteorctl model
 * register`: the campaign waits for the name (status says what it waits for), refuses a wrong
 * label or a name the endpoint does not serve, then evaluates the version under that name.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import {
  launch,
  meteorctl,
  startHarness,
  waitDone,
  waitFor,
  writeSpec,
  type Harness,
} from '../support/harness';

describe('deploy: manual with model register', () => {
  let h: Harness;
  afterAll(async () => {
    await h?.close();
  });

  it('waits for the served name, refuses wrong ones, then evaluates the version under it', async () => {
    h = await startHarness();
    const spec = await writeSpec(h, {
      deploy: { type: 'manual' },
      stages: { evaluate: { enabled: true, batchSize: 4, bootstrapResamples: 200 } },
    });
    const { campaignId } = await launch(h, spec);

    const status = await waitFor(
      'the campaign to wait for M1',
      async () => {
        const s = await campaignStatus(h.clients, campaignId);
        return s.awaitingRegistration ? s : undefined;
      },
      60_000,
    );
    expect(status.awaitingRegistration?.label).toBe('M1');
    const checkpoint = fileURLToPath(status.awaitingRegistration?.checkpointUri ?? '');
    // Status and a register of a name nothing serves yet: both leave the campaign waiting, so
    // their CLI processes start together.
    const [human, unserved] = await Promise.all([
      meteorctl(h, ['campaign', 'status', campaignId]),
      meteorctl(h, ['model', 'register', campaignId, 'M1', '--served-model', 'ops-m1']),
    ]);
    expect(human.stdout).toContain(`meteorctl model register ${campaignId} M1 --served-model NAME`);

    // Nothing serves the name yet: refused, and the campaign keeps waiting.
    expect(unserved.code).not.toBe(0);
    expect(unserved.stderr).toContain('does not serve model "ops-m1"');
    // Serve it as a user would (vLLM's runtime LoRA API), then a wrong label is still refused.
    const loaded = await fetch(`${h.sim.url}/load_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: 'ops-m1', lora_path: checkpoint }),
    });
    expect(loaded.ok).toBe(true);
    const wrongLabel = await meteorctl(h, [
      'model',
      'register',
      campaignId,
      'M2',
      '--served-model',
      'ops-m1',
    ]);
    expect(wrongLabel.code).not.toBe(0);
    expect(wrongLabel.stderr).toContain(`campaign ${campaignId} waits for M1`);
    expect(h.sim.stats().byModel['ops-m1']?.requests ?? 0).toBe(0);

    const ok = await meteorctl(h, [
      'model',
      'register',
      campaignId,
      'M1',
      '--served-model',
      'ops-m1',
      '--json',
    ]);
    expect(ok.stderr).toBe('');
    expect(JSON.parse(ok.stdout)).toEqual({ campaignId, label: 'M1', servedModel: 'ops-m1' });

    const final = await waitDone(h, campaignId, 120_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => [m.label, m.servedModel])).toEqual([
      ['M0', final.lineage[0]?.servedModel],
      ['M1', 'ops-m1'],
    ]);
    // The evaluation called the registered name at the server: M1 was judged, not M0 twice.
    expect(h.sim.stats().byModel['ops-m1']?.served ?? 0).toBeGreaterThan(0);
    const again = await meteorctl(h, ['model', 'register', campaignId, 'M1', '--served-model', 'ops-m1']);
    expect(again.stderr).toContain('is not waiting for a served name');
  });
});
