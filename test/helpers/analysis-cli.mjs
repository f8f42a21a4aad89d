#!/usr/bin/env node
// Runs analysis-cli.ts through tsx, as bin/kwshield runs the CLI.
import { register } from 'tsx/esm/api';

register();
await import('./analysis-cli.ts');
