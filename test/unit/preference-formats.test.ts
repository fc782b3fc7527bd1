/**
 * Every preference format parses as the format it claims (REFERENCE.md §3), checked against
 * small schemas of each trainer's format (test/support/preference-formats.ts) written from its
 * documentation, not from the exporter.
 */
import { describe, expect, it } from 'vitest';
import { PREFERENCE_FORMATS, preferenceLine, type PreferenceExample } from '../../core/dataset-formats';
import {
  LlamaFactoryRankingLine,
  OpenAiDpoLine,
  PREFERENCE_LINE_SCHEMAS,
  TrlPreferenceLine,
} from '../support/preference-formats';

const SCHEMAS = PREFERENCE_LINE_SCHEMAS;

const ex: PreferenceExample = {
  system: 'You are an expert in Kubernetes operations. Answer precisely and accurately.',
  user: 'Pod stuck in Pending\n\nMy pod never starts. Why?',
  chosen: 'Run kubectl describe pod: the scheduler events say which resource is short.',
  rejected: 'It may be a resource problem.',
};

describe('preference dataset lines', () => {
  it('cover the three formats the CLI offers', () => {
    expect([...PREFERENCE_FORMATS].sort()).toEqual(['llamafactory', 'openai', 'trl']);
  });

  for (const format of PREFERENCE_FORMATS) {
    it(`${format}: parses as its format and survives a JSON round trip`, () => {
      const line = JSON.parse(JSON.stringify(preferenceLine(format, ex))) as unknown;
      expect(SCHEMAS[format].safeParse(line).error).toBeUndefined();
      // And as no other: a line in the wrong format would be rejected by that trainer.
      for (const other of PREFERENCE_FORMATS) {
        if (other !== format) expect(SCHEMAS[other].safeParse(line).success).toBe(false);
      }
    });
  }

  it('openai: the prompt is system then user; chosen is preferred, rejected is not', () => {
    const line = OpenAiDpoLine.parse(preferenceLine('openai', ex));
    expect(line.input.messages).toEqual([
      { role: 'system', content: ex.system },
      { role: 'user', content: ex.user },
    ]);
    expect(line.preferred_output).toEqual([{ role: 'assistant', content: ex.chosen }]);
    expect(line.non_preferred_output).toEqual([{ role: 'assistant', content: ex.rejected }]);
  });

  it('trl: explicit prompt messages, chosen and rejected assistant turns', () => {
    const line = TrlPreferenceLine.parse(preferenceLine('trl', ex));
    expect(line.prompt.map((m) => m.role)).toEqual(['system', 'user']);
    expect(line.prompt[1]?.content).toBe(ex.user);
    expect(line.chosen).toEqual([{ role: 'assistant', content: ex.chosen }]);
    expect(line.rejected).toEqual([{ role: 'assistant', content: ex.rejected }]);
  });

  it('llamafactory: instruction, empty input, chosen, rejected and system as strings', () => {
    expect(LlamaFactoryRankingLine.parse(preferenceLine('llamafactory', ex))).toEqual({
      instruction: ex.user,
      input: '',
      chosen: ex.chosen,
      rejected: ex.rejected,
      system: ex.system,
    });
  });

  it('keep texts with newlines, quotes and non-ASCII intact', () => {
    const tricky: PreferenceExample = {
      ...ex,
      chosen: 'Line 1\nLine "2" — größe ✓\n```yaml\nkey: value\n```',
      rejected: "it's {not} JSON",
    };
    for (const format of PREFERENCE_FORMATS) {
      const line = SCHEMAS[format].parse(JSON.parse(JSON.stringify(preferenceLine(format, tricky))));
      expect(JSON.stringify(line)).toContain(JSON.stringify(tricky.chosen).slice(1, -1));
    }
  });
});
