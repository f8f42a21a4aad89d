// Typed, validated options of attacks and defenses (options.ts).
export {
  OptionError,
  type OptionSpec,
  type OptionSpecs,
  type OptionsOf,
  type OptionType,
  type OptionValue,
  parseOptionPairs,
  resolveOptions,
} from './options.ts';
