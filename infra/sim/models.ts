/**
 * The models the simulator serves: three fixed base models and the LoRA adapters loaded at
 * runtime (vLLM's `load_lora_adapter` API).
 */
import type { Grader, LoadedAdapter } from './adapters';
import { AdapterError, loadAdapter } from './adapters';

export const WEAK_MODEL = 'sim-weak-8b';
export const STRONG_MODEL = 'sim-strong';
export const JUDGE_MODEL = 'sim-judge';

export type ModelKind = 'weak' | 'strong' | 'judge' | 'adapter';

export interface SimModel {
  id: string;
  kind: ModelKind;
  created: number;
  adapter?: LoadedAdapter;
}

export class ModelRegistry {
  private readonly base: SimModel[];
  private readonly adapters = new Map<string, SimModel>();

  /**
   * `grade`: how loaded adapters' training rows are graded (learning.ts); without it an adapter
   * learns every row it was trained on.
   */
  constructor(
    created: number = Math.floor(Date.now() / 1000),
    private readonly grade?: Grader,
  ) {
    this.base = [
      { id: WEAK_MODEL, kind: 'weak', created },
      { id: STRONG_MODEL, kind: 'strong', created },
      { id: JUDGE_MODEL, kind: 'judge', created },
    ];
  }

  list(): SimModel[] {
    return [...this.base, ...this.adapters.values()];
  }

  get(id: string): SimModel | undefined {
    return this.base.find((m) => m.id === id) ?? this.adapters.get(id);
  }

  /** Throws AdapterError (a 400 for the caller) when the name is taken or the directory holds no valid adapter. */
  load(name: string, path: string, inplace = false): SimModel {
    if (this.base.some((m) => m.id === name))
      throw new AdapterError(`The lora adapter name '${name}' is a base model name.`);
    if (this.adapters.has(name) && !inplace)
      throw new AdapterError(`The lora adapter '${name}' has already been loaded.`);
    const model: SimModel = {
      id: name,
      kind: 'adapter',
      created: Math.floor(Date.now() / 1000),
      adapter: loadAdapter(name, path, this.grade),
    };
    this.adapters.set(name, model);
    return model;
  }

  unload(name: string): boolean {
    return this.adapters.delete(name);
  }
}
