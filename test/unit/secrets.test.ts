/**
 * Secrets never leave in a text: scrubSecrets masks key shapes, headers, JWTs, URL userinfo and
 * the exact values it is told about; classifyLlmError scrubs the provider's echo of the key; a
 * fine-tune `env` value that looks like a secret is refused with the advice to use passEnv.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { FineTuneSchema } from '../../core/finetune-spec';
import { classifyLlmError } from '../../core/llm/errors';
import {
  isSecretName,
  looksLikeSecret,
  maskKnownSecrets,
  REDACTED,
  scrubSecrets,
  secretValues,
  specSecretNames,
} from '../../core/secrets';

const OPENAI_KEY = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789XYZ4';

describe('scrubSecrets', () => {
  it('masks API keys by shape, keeping the prefix and last 4 to recognise them', () => {
    const out = scrubSecrets(`Incorrect API key provided: ${OPENAI_KEY}.`);
    expect(out).not.toContain(OPENAI_KEY);
    expect(out).toBe('Incorrect API key provided: sk-proj-…XYZ4.');
    expect(scrubSecrets('key sk-abcdefghijklmnop1234 and hf_abcdefghijklmnopqrstu')).toBe(
      'key sk-…1234 and hf_…rstu',
    );
    // Already masked by the provider, or too short to be a key: left alone.
    expect(scrubSecrets('provided: sk-proj-********XYZ4')).toBe('provided: sk-proj-********XYZ4');
    expect(scrubSecrets('a task-list and sk-1')).toBe('a task-list and sk-1');
  });

  it('masks Bearer tokens, Authorization headers and JWTs', () => {
    expect(scrubSecrets('sent Bearer abc.def-123_XYZ')).toBe(`sent Bearer ${REDACTED}`);
    expect(scrubSecrets('Authorization: Basic dXNlcjpwYXNz')).toBe(`Authorization: Basic ${REDACTED}`);
    expect(scrubSecrets('{"authorization":"opaque-token-value"}')).toBe(`{"authorization":"${REDACTED}"}`);
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZXRlb3IifQ.c2lnbmF0dXJlLXZhbHVl';
    expect(scrubSecrets(`token ${jwt} expired`)).toBe(`token ${REDACTED} expired`);
  });

  it('masks URL userinfo and secrets in query strings', () => {
    expect(scrubSecrets('cannot reach https://user:p%40ss@llm.example/v1 (model "m")')).toBe(
      'cannot reach https://***@llm.example/v1 (model "m")',
    );
    expect(scrubSecrets('postgres://meteor:hunter2@db:5432/meteor')).toBe('postgres://***@db:5432/meteor');
    expect(scrubSecrets('GET https://api.example/v1?api_key=abc123&x=1')).toBe(
      `GET https://api.example/v1?api_key=${REDACTED}&x=1`,
    );
    // No userinfo: nothing to mask.
    expect(scrubSecrets('http://127.0.0.1:8787/v1')).toBe('http://127.0.0.1:8787/v1');
  });

  it('masks the exact values it is told about, whatever their shape, encoded too', () => {
    const key = 'opaque/7Hq2 ZpX9vLw4';
    const text = `got ${key}, as a query ${encodeURIComponent(key)} and in JSON ${JSON.stringify({ key })}`;
    const out = scrubSecrets(text, [key]);
    expect(out).not.toContain(key);
    expect(out).not.toContain(encodeURIComponent(key));
    expect(out).toBe(`got ${REDACTED}, as a query ${REDACTED} and in JSON {"key":"${REDACTED}"}`);
    // Too short to be a secret: masking it would garble ordinary text.
    expect(scrubSecrets('none of it', ['none'])).toBe('none of it');
    // maskKnownSecrets leaves shapes alone (prompts may talk about Bearer tokens).
    expect(maskKnownSecrets(`Bearer xyz123 ${key}`, [key])).toBe(`Bearer xyz123 ${REDACTED}`);
  });

  it('ordinary text is left alone', () => {
    const text =
      'kubectl describe pod web-7f9c (namespace "prod"): CrashLoopBackOff; see https://kubernetes.io/docs';
    expect(scrubSecrets(text)).toBe(text);
    expect(looksLikeSecret('/shared/hf')).toBe(false);
    expect(looksLikeSecret(OPENAI_KEY)).toBe(true);
  });
});

describe('secret values and names', () => {
  it('collects the named variables and secret-named ones, ignoring short values', () => {
    const env = {
      STRONG_KEY: 'value-of-strong-key',
      HF_TOKEN: 'hf-token-value-123',
      PGPASSWORD: 'pg-password-value',
      METEOR_JOB_KEY: 'c1:distill:2',
      TOKENIZERS_PARALLELISM: 'false-ish-long',
      WEAK_KEY: 'short',
    };
    expect(secretValues(env, ['STRONG_KEY', 'WEAK_KEY', undefined]).sort()).toEqual(
      ['hf-token-value-123', 'pg-password-value', 'value-of-strong-key'].sort(),
    );
    expect(isSecretName('OPENAI_API_KEY')).toBe(true);
    expect(isSecretName('AWS_SECRET_ACCESS_KEY')).toBe(true);
    expect(isSecretName('METEOR_JOB_KEY')).toBe(false);
    expect(isSecretName('TOKENIZERS_PARALLELISM')).toBe(false);
  });

  it('names the secret variables of a spec', () => {
    expect(
      specSecretNames({
        models: { weak: {}, strong: { apiKeyEnv: 'STRONG_KEY' }, judge: { apiKeyEnv: 'JUDGE_KEY' } },
        fineTune: { passEnv: ['HF_TOKEN'], rest: { tokenEnv: 'SLURM_JWT' } },
      }),
    ).toEqual(['STRONG_KEY', 'JUDGE_KEY', 'HF_TOKEN', 'SLURM_JWT']);
  });
});

describe('classifyLlmError', () => {
  const ep = {
    role: 'strong',
    baseURL: 'https://u:pw@llm.example/v1',
    model: 'gpt-x',
    apiKeyEnv: 'STRONG_KEY',
  };

  it('scrubs the key a provider echoes in its 401, and the base URL password', () => {
    const err = OpenAI.APIError.generate(
      401,
      { error: { message: `Incorrect API key provided: ${OPENAI_KEY}.` } },
      undefined,
      new Headers(),
    );
    const c = classifyLlmError(err, ep);
    expect(c.message).toContain('$STRONG_KEY');
    expect(c.message).not.toContain(OPENAI_KEY);
    expect(c.message).not.toContain('u:pw');
    expect(c.message).toContain('https://***@llm.example/v1');
  });

  it('scrubs known values of any shape, on every path', () => {
    const key = 'opaque-key-with-no-shape';
    const api = OpenAI.APIError.generate(
      500,
      { error: { message: `echo ${key}` } },
      undefined,
      new Headers(),
    );
    expect(classifyLlmError(api, ep, [key]).message).not.toContain(key);
    expect(classifyLlmError(new Error(`boom ${key}`), ep, [key]).message).not.toContain(key);
    const conn = new OpenAI.APIConnectionError({ message: 'x', cause: new Error(`refused ${key}`) });
    expect(classifyLlmError(conn, ep, [key]).message).not.toContain(key);
  });
});

describe('fineTune.env', () => {
  const base = { type: 'local', command: 'train' };

  it('refuses a secret-looking value, naming the variable and advising passEnv', () => {
    for (const env of [{ HF_TOKEN: 'hf_abcdefghijklmnopqrstuv' }, { WANDB_X: OPENAI_KEY }]) {
      const r = FineTuneSchema.safeParse({ ...base, env });
      expect(r.success).toBe(false);
      const issue = r.error?.issues[0];
      const name = Object.keys(env)[0] ?? '';
      expect(issue?.path).toEqual(['env', name]);
      expect(issue?.message).toContain(name);
      expect(issue?.message).toContain('passEnv');
    }
    // A URL with a password is a secret too.
    expect(FineTuneSchema.safeParse({ ...base, env: { HUB: 'https://u:p@hub.example' } }).success).toBe(
      false,
    );
  });

  it('accepts ordinary values', () => {
    const r = FineTuneSchema.safeParse({
      ...base,
      env: { HF_HOME: '/shared/hf', METEOR_SIM_TRAIN_SECONDS: '0.5', TOKENIZERS_PARALLELISM: 'false' },
    });
    expect(r.success).toBe(true);
  });
});
