/**
 * The http(s) URL fields of a spec (model endpoints, slurmrestd). A URL may not carry
 * credentials: the spec is stored with the campaign (Postgres, Temporal payloads), and the
 * OpenAI client's fetch refuses such URLs anyway. Keys are named by environment variable.
 */
import { z } from 'zod';

export function httpUrl(example: string, keyField: string) {
  return z.url({ protocol: /^https?$/, error: `an http(s) URL such as ${example}` }).refine(
    (value) => {
      const url = new URL(value);
      return url.username === '' && url.password === '';
    },
    {
      // The value is not echoed: it holds the secret.
      error: `credentials in the URL (user:password@) are not accepted — they would be stored with the campaign; put the secret in an environment variable and name it in ${keyField}`,
    },
  );
}
