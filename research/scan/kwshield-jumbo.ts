// The kwshield command with the research attack `jumbo` registered (research/scan/jumbo.ts): the shadow models of
// scan-meta.ts are jumbo attack runs. usage: npx tsx research/scan/kwshield-jumbo.ts attack --attack jumbo ...
import './jumbo.ts';
import { main } from '../../src/cli/main.ts';

process.exitCode = await main(process.argv);
