// Unidirectional LSTM classifiers over MFCC frames (specs/models.md `lstm`; attacks.md section 8): the last
// time step's hidden state goes to a Linear. `lstm-large` is the GN-FT authors' `RNN` ([GNFT] utils/models.py:
// 3 layers, hidden 768), whose field names (lstm, fc) these share, so state dicts line up with it.
import { chain, FeatureNorm, Linear, release } from '../nn/index.ts';
import { LSTM } from '../nn/layers/lstm.ts';
import { fillInPlace, narrow, noGrad, type Tensor, tidy } from '../torch/index.ts';
import { ConfiguredModel } from './configured-model.ts';
import { registerFamily } from './registry.ts';

export interface LstmConfig {
  classes: number;
  /** one clip as the front-end gives it: [frames, coefficients] */
  inputShape: [number, number];
  hiddenSize: number;
  numLayers: number;
  /** standardise each MFCC coefficient with statistics fitted on the training clips (FeatureNorm) */
  inputNorm: boolean;
  /**
   * Starting value of each forget gate's total bias (bias_ih + bias_hh); null keeps PyTorch's uniform init.
   * A positive value lets the cell carry a word through the silence after it to the last step.
   */
  forgetGateBias: number | null;
}

export const lstmDefaults: LstmConfig = { classes: 10, inputShape: [101, 40], hiddenSize: 128, numLayers: 2, inputNorm: false, forgetGateBias: null };

// [GNFT] `RNN`: nn.LSTM(40, 768, 3, batch_first=True).
export const lstmLargeDefaults: LstmConfig = { ...lstmDefaults, hiddenSize: 768, numLayers: 3 };

export class LstmNet extends ConfiguredModel<LstmConfig> {
  input_norm?: FeatureNorm;
  lstm: LSTM;
  fc: Linear;

  constructor(config: Partial<LstmConfig> = {}) {
    super(lstmDefaults, config);
    const { inputShape, hiddenSize, numLayers } = this.config;
    if (this.config.inputNorm) this.input_norm = new FeatureNorm(inputShape[1]);
    this.lstm = new LSTM(inputShape[1], hiddenSize, { numLayers, batchFirst: true });
    this.fc = new Linear(hiddenSize, this.config.classes);
    if (this.config.forgetGateBias !== null) this.setForgetGateBias(this.config.forgetGateBias);
  }

  /** Rows H..2H of the biases are the forget gate (PyTorch's gate order i, f, g, o). */
  private setForgetGateBias(value: number): void {
    const { hiddenSize, numLayers } = this.config;
    const fields = this.lstm as unknown as Record<string, Tensor>;
    noGrad(() => {
      for (let layer = 0; layer < numLayers; layer++) {
        tidy(() => {
          fillInPlace(narrow(fields[`bias_ih_l${layer}`], 0, hiddenSize, hiddenSize), value);
          fillInPlace(narrow(fields[`bias_hh_l${layer}`], 0, hiddenSize, hiddenSize), 0);
        });
      }
    });
  }

  /** MFCC [batch, frames, coefficients] (or [batch, 1, frames, coefficients]) -> logits [batch, classes] */
  forward(x: Tensor): Tensor {
    const input = x.ndim === 4 && x.size(1) === 1 ? x.squeeze(1) : x;
    const y = chain(
      input,
      (t) => (this.input_norm ? this.input_norm.forward(t) : t),
      (t) => this.lstm.forward(t),
      (t) => t.select(1, t.size(1) - 1),
      (t) => this.fc.forward(t),
    );
    if (input !== x) release(input);
    return y;
  }

  /**
   * One neuron layer per LSTM layer, named `lstm.l<k>` (so neuron `lstm.l0:17` is hidden unit 17 of layer 0).
   * These are not modules with a `.weight`: see lstmUnitParameters for the rows a unit owns.
   */
  neuronLayers(): string[] {
    return Array.from({ length: this.config.numLayers }, (_, k) => `lstm.l${k}`);
  }
}

/**
 * The parameters and rows that belong to hidden unit `unit` of LSTM layer `layer` (a neuron layer
 * `<prefix>.l<k>`): rows unit, H+unit, 2H+unit, 3H+unit (gates i, f, g, o, PyTorch's order) of
 * weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k> and bias_hh_l<k>. Zeroing all of them silences the unit
 * (its cell state stays 0, so its output is 0).
 */
export function lstmUnitParameters(neuronLayer: string, hiddenSize: number, unit: number): { names: string[]; rows: number[] } {
  const match = /^(.*)\.l(\d+)$/.exec(neuronLayer);
  if (!match) throw new Error(`'${neuronLayer}' is not an LSTM neuron layer (expected '<lstm path>.l<layer>')`);
  if (!(unit >= 0 && unit < hiddenSize)) throw new RangeError(`unit ${unit} is outside [0, ${hiddenSize})`);
  const [, prefix, layer] = match;
  return {
    names: ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((p) => `${prefix}.${p}_l${layer}`),
    rows: [0, 1, 2, 3].map((gate) => gate * hiddenSize + unit),
  };
}

// Measured on the small synthetic SCD-10 (3,000 training clips), fast recipe, 30 epochs: batch 128 gives only
// 24 updates an epoch and the LSTM underfits (83.1% test, train 86-93%); batch 32 reaches 89.3%. Standardised
// inputs with a forget-gate bias of 1 did no better at batch 32 (89.5%) and worse at 128 (81.2%).
// lstm-large shares the setting for the same reason; it has not been trained to a figure yet.
const lstmFastRecipe = { batchSize: 32 };

registerFamily<LstmConfig>(
  {
    frontEnd: 'mfcc-16k',
    inputShape: [101, 40],
    inputKind: 'spectral',
    inputConfig: ([frames, coefficients]) => ({ inputShape: [frames, coefficients] }),
    build: (config) => new LstmNet(config),
    neuronLayers: (model) => (model as LstmNet).neuronLayers(),
    fastRecipe: lstmFastRecipe,
  },
  [
    { name: 'lstm', description: '2-layer unidirectional LSTM, hidden 128, over MFCC frames; last step -> Linear', defaults: lstmDefaults },
    { name: 'lstm-large', description: "GN-FT authors' RNN: 3-layer unidirectional LSTM, hidden 768; last step -> Linear", defaults: lstmLargeDefaults },
  ],
);
