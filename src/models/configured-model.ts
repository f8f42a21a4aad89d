// The one place a model family merges its defaults with the fields a caller gives: every family's
// constructor takes a partial configuration and keeps the full one on the instance.
import { Module } from '../nn/index.ts';

/** A model holding its family's defaults with the caller's fields over them, as `config`. */
export abstract class ConfiguredModel<C extends object> extends Module {
  readonly config: C;

  protected constructor(defaults: C, config: Partial<C>) {
    super();
    this.config = { ...defaults, ...config };
  }
}
