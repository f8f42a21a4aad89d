import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decode, type FixtureTensor, loadPyTorchState, maxAbsDiff } from '../../../test/helpers/layer-fixtures.ts';
import { backward, manualSeed, memory, noGrad, randn, tensor, tidy } from '../../torch/index.ts';
import { LayerNorm } from './norm.ts';
import { TransformerEncoder, TransformerEncoderLayer, type TransformerEncoderLayerOptions } from './transformer.ts';

// ---- fixtures made by scripts/make-layer-fixture.py -----------------------------------------------
interface TransformerCase {
  name: string;
  kind: 'layer' | 'encoder';
  dModel: number;
  nhead: number;
  numLayers?: number;
  options: TransformerEncoderLayerOptions & { activation: 'relu' | 'gelu' };
  state: (FixtureTensor & { name: string })[];
  inputs: { src: FixtureTensor; srcKeyPaddingMask?: FixtureTensor };
  outputs: { output: FixtureTensor };
}

const fixture: { cases: TransformerCase[] } = JSON.parse(readFileSync(new URL('../../../fixtures/layers/transformer.json', import.meta.url), 'utf8'));

const PYTORCH_LAYER_NAMES = [
  'self_attn.in_proj_weight',
  'self_attn.in_proj_bias',
  'self_attn.out_proj.weight',
  'self_attn.out_proj.bias',
  'linear1.weight',
  'linear1.bias',
  'linear2.weight',
  'linear2.bias',
  'norm1.weight',
  'norm1.bias',
  'norm2.weight',
  'norm2.bias',
];

describe('TransformerEncoderLayer and TransformerEncoder', () => {
  for (const c of fixture.cases) {
    it(`matches torch.nn.TransformerEncoder${c.kind === 'layer' ? 'Layer' : ''}: ${c.name}`, () => {
      const makeLayer = () => new TransformerEncoderLayer(c.dModel, c.nhead, c.options);
      const m = c.kind === 'layer' ? makeLayer() : new TransformerEncoder(makeLayer, c.numLayers as number, { norm: new LayerNorm(c.dModel) });
      loadPyTorchState(m, c.state);
      tidy(() => {
        m.eval();
        const src = decode(c.inputs.src);
        const srcKeyPaddingMask = c.inputs.srcKeyPaddingMask && decode(c.inputs.srcKeyPaddingMask);
        const output = noGrad(() => m.forward(src, { srcKeyPaddingMask }));
        assert.ok(maxAbsDiff(output, decode(c.outputs.output)) < 1e-4);
      });
      m.dispose();
    });
  }

  it('has PyTorch’s children, defaults and state dict order', () => {
    const layer = new TransformerEncoderLayer(16, 4);
    assert.deepEqual(
      layer.namedChildren().map(([n]) => n),
      ['self_attn', 'linear1', 'dropout', 'linear2', 'norm1', 'norm2', 'dropout1', 'dropout2'],
    );
    assert.deepEqual([...layer.stateDict().keys()], PYTORCH_LAYER_NAMES);
    assert.deepEqual(layer.linear1.weight.shape, [2048, 16], 'dim_feedforward defaults to 2048');
    assert.equal(layer.dropout.p, 0.1);
    assert.equal(layer.self_attn.dropout, 0.1);
    assert.equal(layer.norm1.eps, 1e-5);
    layer.dispose();
  });

  it('TransformerEncoder names layers.0, layers.1, ... and starts them identical, as PyTorch’s clones', () => {
    const encoder = new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }), 3, { norm: new LayerNorm(8) });
    const names = [...encoder.stateDict().keys()];
    assert.deepEqual(names, [...[0, 1, 2].flatMap((i) => PYTORCH_LAYER_NAMES.map((n) => `layers.${i}.${n}`)), 'norm.weight', 'norm.bias']);
    const state = encoder.stateDict();
    for (const n of PYTORCH_LAYER_NAMES) {
      assert.deepEqual(state.get(`layers.2.${n}`)?.toArray(), state.get(`layers.0.${n}`)?.toArray());
    }
    assert.notEqual(encoder.layers[1].linear1.weight, encoder.layers[0].linear1.weight, 'copies, not shared tensors');
    encoder.dispose();
    const independent = new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }), 2, { identicalInit: false });
    assert.notDeepEqual(independent.layers[0].linear1.weight.toArray(), independent.layers[1].linear1.weight.toArray());
    assert.equal(independent.norm, null);
    independent.dispose();
  });

  it('shapes: sequence first, batch first, unbatched; the activation option', () => {
    const seqFirst = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, activation: 'gelu' }).eval();
    const batchFirst = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true, normFirst: true }).eval();
    tidy(() => {
      const x = randn([5, 3, 8]);
      assert.deepEqual(seqFirst.forward(x).shape, [5, 3, 8]);
      assert.deepEqual(batchFirst.forward(x).shape, [5, 3, 8]);
      const single = randn([5, 8]);
      assert.ok(maxAbsDiff(seqFirst.forward(single), seqFirst.forward(single.unsqueeze(1)).squeeze(1)) < 1e-5);
      const identityActivation = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, activation: (t) => t });
      assert.deepEqual(identityActivation.forward(x).shape, [5, 3, 8]);
      identityActivation.dispose();
    });
    seqFirst.dispose();
    batchFirst.dispose();
  });

  it('dropout acts only in training mode', () => {
    manualSeed(11);
    const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 });
    tidy(() => {
      const x = randn([4, 2, 8]);
      assert.ok(maxAbsDiff(layer.forward(x), layer.forward(x)) > 1e-4);
      layer.eval();
      assert.equal(maxAbsDiff(layer.forward(x), layer.forward(x)), 0);
    });
    layer.dispose();
  });

  it('repeated forward/backward inside tidy leaves the live tensor count unchanged', () => {
    const encoder = new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true }), 2, { norm: new LayerNorm(8) });
    const x = randn([3, 5, 8]);
    const padding = tensor([false, false, false, false, true, false, false, false, false, false, false, false, false, true, true], [3, 5]);
    const step = () =>
      tidy(() => {
        backward(encoder.forward(x, { srcKeyPaddingMask: padding }).square().mean());
      });
    step();
    const live = memory().liveTensors;
    for (let i = 0; i < 5; i++) step();
    assert.equal(memory().liveTensors, live);
    tidy(() => assert.ok(encoder.parameters().every((p) => p.grad !== null)));
    encoder.dispose();
    x.dispose();
    padding.dispose();
  });
});
