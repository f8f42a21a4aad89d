// Typed, validated options of attacks and defenses (options.ts).
export {
  OptionError,
  type OptionSpec,
  type OptionSpecs,
  type OptionType,
  type OptionValue,
  type OptionsOf,
  parseOptionPairs,
  resolveOptions,
} from './options.ts';
