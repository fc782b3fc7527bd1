// Values test/global-setup.ts hands to every test file through `inject(...)`.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    temporalAddress: string;
    temporalNamespace: string;
    /** The workflow bundle, made once per run (JSON of { code, sourceMap }). */
    workflowBundlePath: string;
  }
}
