/**
 * One home for keeping secrets out of what the platform writes down: Postgres rows, Temporal
 * payloads and failures, logs and the terminal. Providers echo keys in their error texts (OpenAI's
 * "Incorrect API key provided: sk-…"), URLs carry passwords, and a thrown error travels into
 * workflow histories that outlive the key, so every text that leaves an LLM call or a preflight
 * check goes through `scrubSecrets` first.
 */

export const REDACTED = '[redacted]';

/** Shorter values are not treated as secrets: masking "none" or "1" everywhere would garble text. */
const MIN_SECRET_LENGTH = 8;

/**
 * Names of variables whose values are secrets even when the spec does not name them: HF_TOKEN,
 * OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY, PGPASSWORD, SLURM_JWT. A bare `_KEY` is left out: it
 * names ids as often as secrets (METEOR_JOB_KEY).
 */
const SECRET_NAME =
  /(^|_)(API_?KEY|ACCESS_KEY|PRIVATE_KEY|SECRET_KEY|TOKEN|SECRET|JWT|CREDENTIALS?)$|PASSWORD$|PASSWD$|(^|_)SECRET(_|$)/i;

/** Whether an environment variable's name says it holds a secret (HF_TOKEN, OPENAI_API_KEY, …). */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** `sk-…XYZ4`: recognisable (which key was it?) without being usable. */
function maskKey(prefix: string, key: string): string {
  return `${prefix}…${key.slice(-4)}`;
}

interface Rule {
  pattern: RegExp;
  replace: (match: string, ...groups: string[]) => string;
}

/** Key-shaped tokens by well-known prefix; the prefix and the last 4 characters are kept. */
const KEY_PREFIXES = [
  'sk-proj-',
  'sk-ant-',
  'sk-or-v1-',
  'sk-',
  'hf_',
  'ghp_',
  'gho_',
  'ghs_',
  'ghu_',
  'github_pat_',
  'glpat-',
  'xoxb-',
  'xoxp-',
  'xoxa-',
  'rk_live_',
  'sk_live_',
  'sk_test_',
];
const prefixAlternation = KEY_PREFIXES.map((p) => p.replace(/[-]/g, '\\-')).join('|');

const RULES: Rule[] = [
  // URL userinfo: https://user:pass@host → https://***@host (a bare user may be a token too).
  {
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi,
    replace: (_m, scheme = '') => `${scheme}***@`,
  },
  // Authorization / Proxy-Authorization headers, whatever the scheme.
  {
    pattern: /\b((?:proxy-)?authorization"?\s*[:=]\s*"?)(?:(Bearer|Basic|Token|Digest)\s+)?[^\s"',;}]+/gi,
    replace: (_m, head = '', scheme) => `${head}${scheme ? `${scheme} ` : ''}${REDACTED}`,
  },
  // Bearer tokens anywhere else.
  {
    pattern: /\bBearer\s+(?!\[redacted\])[A-Za-z0-9\-._~+/]+=*/gi,
    replace: () => `Bearer ${REDACTED}`,
  },
  // JWTs (header.payload.signature, base64url, both parts starting with `{"`).
  {
    pattern: /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
    replace: () => REDACTED,
  },
  // API keys by prefix: sk-…, sk-proj-…, hf_…, ghp_…
  {
    pattern: new RegExp(`(?<![A-Za-z0-9_-])(${prefixAlternation})([A-Za-z0-9][A-Za-z0-9_-]{9,})`, 'g'),
    replace: (_m, prefix = '', rest = '') => maskKey(prefix, rest),
  },
  // AWS access key ids and Google API keys.
  { pattern: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/g, replace: (_m, prefix = '') => `${prefix}…${REDACTED}` },
  { pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g, replace: () => `AIza…${REDACTED}` },
  // Secrets in query strings: ?api_key=…, &token=…
  {
    pattern: /([?&](?:api[_-]?key|key|token|access_token|auth|secret|password|sig|signature)=)[^&\s"'#]+/gi,
    replace: (_m, head = '') => `${head}${REDACTED}`,
  },
  // JSON-ish fields named like secrets: "api_key": "…", password: …
  {
    pattern:
      /(["']?\b(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|client[_-]?secret|secret|password|passwd)\b["']?\s*[:=]\s*)(["'])(?!\[redacted\])[^"']+\2/gi,
    replace: (_m, head = '', quote = '') => `${head}${quote}${REDACTED}${quote}`,
  },
];

/**
 * `text` with key-like tokens, Authorization headers, Bearer tokens, JWTs, URL userinfo and
 * every occurrence of the `knownSecrets` values masked. Exact values go first, so a key with no
 * recognisable shape is still caught; shapes catch keys we were never told about.
 */
export function scrubSecrets(text: string, knownSecrets: Iterable<string> = []): string {
  let out = maskKnownSecrets(text, knownSecrets);
  for (const rule of RULES) {
    // The callback gets (match, ...groups, offset, input): groups keep their positions, unmatched as ''.
    out = out.replace(rule.pattern, (match: string, ...rest: unknown[]) =>
      rule.replace(match, ...rest.slice(0, -2).map((g) => (typeof g === 'string' ? g : ''))),
    );
  }
  return out;
}

/**
 * Only the exact `knownSecrets` values masked, no shapes: for texts where a key-like shape may be
 * legitimate content (prompts and answers about Bearer tokens) but a real key never is.
 */
export function maskKnownSecrets(text: string, knownSecrets: Iterable<string>): string {
  let out = text;
  const exact = new Set<string>();
  for (const s of knownSecrets) {
    if (s.length < MIN_SECRET_LENGTH) continue;
    exact.add(s);
    // A key may also reach a text URL-encoded (a query string) or JSON-escaped.
    exact.add(encodeURIComponent(s));
    exact.add(JSON.stringify(s).slice(1, -1));
  }
  // Longest first, so a secret that contains another is masked whole.
  for (const s of [...exact].sort((a, b) => b.length - a.length)) {
    out = out.split(s).join(REDACTED);
  }
  return out;
}

/** Whether `value` looks like a secret by its shape alone (a key, token, JWT or URL with a password). */
export function looksLikeSecret(value: string): boolean {
  return scrubSecrets(value) !== value;
}

/**
 * The secret values a process knows of: those of the variables named (`apiKeyEnv` of every
 * endpoint, `passEnv`, a token variable) plus every variable whose name says it is a secret.
 */
export function secretValues(env: NodeJS.ProcessEnv, names: Iterable<string | undefined> = []): string[] {
  const values = new Set<string>();
  const add = (v: string | undefined) => {
    if (v && v.length >= MIN_SECRET_LENGTH) values.add(v);
  };
  for (const name of names) if (name) add(env[name]);
  for (const [name, value] of Object.entries(env)) if (isSecretName(name)) add(value);
  return [...values];
}

/** The names of the secret variables a campaign spec refers to (endpoint keys, passEnv, a Slurm token). */
export function specSecretNames(spec: {
  models: Readonly<Record<string, { apiKeyEnv?: string | undefined } | undefined>>;
  fineTune?: { passEnv?: readonly string[]; rest?: { tokenEnv?: string } | undefined } | undefined;
}): string[] {
  const names: string[] = [];
  for (const ep of Object.values(spec.models)) if (ep?.apiKeyEnv) names.push(ep.apiKeyEnv);
  names.push(...(spec.fineTune?.passEnv ?? []));
  if (spec.fineTune?.rest?.tokenEnv) names.push(spec.fineTune.rest.tokenEnv);
  return names;
}
