// The project's `resnet` has exactly the state-dict names, shapes and dtypes of the PyTorch reference
// (shared/peers/torch_reference.py ResNet), listed once by scripts/make-resnet-fixture.py.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ResNet } from '../src/models/resnet.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/resnet-state-dict.json', import.meta.url), 'utf8')) as { entries: [string, number[], string][] };

describe('resnet matches the PyTorch reference', () => {
  it('state dict names, order, shapes and dtypes', () => {
    const model = new ResNet({ classes: 10 });
    const ours = [...model.stateDict()].map(([name, t]) => [name, t.shape, t.dtype]);
    assert.deepEqual(ours, fixture.entries);
    model.dispose();
  });
});
