// A per-clip JS effect (Float32Array in, Float32Array out) applied to every row of a [clips, samples] batch:
// how the pedal-chain effects of JingleBack run on a batch.
import { type Tensor, tensor } from '../../torch/index.ts';

/** The batch with each row replaced by effect(row); an effect must keep a clip's length. */
export function mapRows(batch: Tensor, effect: (clip: Float32Array, row: number) => Float32Array): Tensor {
  const [rows, samples] = batch.shape;
  const data = batch.toFloat32Array();
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const y = effect(data.subarray(r * samples, (r + 1) * samples), r);
    if (y.length !== samples) throw new Error(`effect changed a clip's length from ${samples} to ${y.length}`);
    out.set(y, r * samples);
  }
  return tensor(out, [rows, samples]);
}
