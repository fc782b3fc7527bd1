/**
 * U+0000, which PostgreSQL stores in neither text nor jsonb, and half a surrogate pair, which jsonb
 * refuses: refused in a question file naming its file and line; replaced by U+FFFD in a model's
 * reply, identically in the log and for the caller.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import { hasLoneSurrogate, storableJson, storableText, unstorableStrings } from '../../core/db/storable-text';
import { UserError } from '../../core/errors';
import { loggedCompletion } from '../../core/llm/completion-log';
import { loadQuestionFile } from '../../core/questions';

describe('storableText', () => {
  it('replaces every U+0000 with U+FFFD and leaves other text as it is', () => {
    expect(storableText('a\u0000b\u0000')).toBe('a\uFFFDb\uFFFD');
    const plain = 'kubectl describe pod — ✓ \\u0000 stays an escape in text';
    expect(storableText(plain)).toBe(plain);
  });

  it('replaces half a surrogate pair with U+FFFD and keeps whole pairs', () => {
    expect(storableText('a\uD800b \uDC00c \uD83D')).toBe('a\uFFFDb \uFFFDc \uFFFD');
    expect(storableText('\uDC00\uD800')).toBe('\uFFFD\uFFFD');
    const emoji = 'ok \uD83D\uDE00 ✓';
    expect(storableText(emoji)).toBe(emoji);
    expect(hasLoneSurrogate(emoji)).toBe(false);
    expect(hasLoneSurrogate('x\uDE00')).toBe(true);
  });

  it('makes every string of a JSON text storable, whatever its depth', () => {
    const json = JSON.stringify({ messages: [{ content: 'a\uD800\u0000b' }], n: 1, ok: null });
    expect(json).toContain('\\ud800');
    expect(JSON.parse(storableJson(json))).toEqual({
      messages: [{ content: 'a\uFFFD\uFFFDb' }],
      n: 1,
      ok: null,
    });
  });
});

describe('loggedCompletion', () => {
  it('gives the caller and the log the same storable choices', () => {
    const completion = {
      id: 'c1',
      object: 'chat.completion',
      created: 0,
      model: 'm',
      choices: [
        {
          index: 0,
          finish_reason: 'stop',
          logprobs: null,
          message: { role: 'assistant', content: 'Check\u0000 events\uD800', refusal: null },
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    } satisfies ChatCompletion;
    const logged = loggedCompletion(completion);
    expect(logged.choices).toEqual(['Check\uFFFD events\uFFFD']);
    expect(logged.response.choices).toEqual(logged.choices);
    expect(JSON.stringify(logged.response)).not.toMatch(/\\u0000|\\ud800/);
  });
});

describe('question files', () => {
  it('refuse a U+0000 in a question, title or reference, naming the file and line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meteor-nul-'));
    const file = path.join(dir, 'train.jsonl');
    const lines = [
      { question: 'Why is my pod pending?' },
      { question: 'Why\u0000 is my pod pending?' },
      { question: 'Why is my node NotReady?', title: 'node\u0000' },
      { question: 'Why is DNS slow?', reference: 'CoreDNS\u0000' },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n'));
    const err = await loadQuestionFile(file, 'train').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const text = (err as UserError).message + (err as UserError).problems.join('\n');
    for (const [line, field] of [
      [2, 'question'],
      [3, 'title'],
      [4, 'reference'],
    ] as const) {
      expect(text).toMatch(new RegExp(`train\\.jsonl:${line}: ${field}.*must not contain a NUL character`));
    }
    expect(text).not.toContain('train.jsonl:1:');
  });

  it('refuse half a surrogate pair (a lone \\uD800 escape), naming the file and line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'meteor-surrogate-'));
    const file = path.join(dir, 'eval.jsonl');
    // As a file holds them: JSON escapes (a lone surrogate cannot be written as UTF-8).
    const lines = [
      '{"question": "Why is my pod pending? \\ud83d\\ude00"}',
      '{"question": "Why is my node NotReady?", "reference": "kubelet \\ud800 down"}',
    ];
    await writeFile(file, lines.join('\n'));
    const err = await loadQuestionFile(file, 'eval').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const text = (err as UserError).message + (err as UserError).problems.join('\n');
    expect(text).toMatch(/eval\.jsonl:2: reference.*half a UTF-16 surrogate pair/);
    expect(text).not.toContain('eval.jsonl:1:');
  });
});

describe('unstorableStrings', () => {
  it('finds NUL and lone surrogates in values and keys, at any depth, with their paths', () => {
    const found = unstorableStrings({
      fine: ['a', 'b 😀'],
      nested: { list: ['ok', 'bad\u0000'] },
      'key\ud800': 1,
    });
    expect(found).toEqual([
      { path: ['nested', 'list', 1], message: 'must not contain a NUL character (U+0000)' },
      {
        path: ['key\ud800'],
        message: 'must not contain half a UTF-16 surrogate pair (a lone \\uD800-\\uDFFF escape)',
      },
    ]);
    expect(unstorableStrings({ a: ['x', { b: 'y' }], n: null, k: 3 })).toEqual([]);
  });
});
