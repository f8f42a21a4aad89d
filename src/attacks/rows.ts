// Applying a per-clip JS effect (Float32Array in, Float32Array out) to every row of a [clips, samples] batch.
import { type Tensor, tensor } from '../torch/index.ts';

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

/** Why a trigger defined at 16 kHz cannot run on a front-end at another rate; null when it can. */
export function needs16k(attack: string, frontEnd: { name: string; sampleRate: number }, fix: string): string | null {
  if (frontEnd.sampleRate === 16000) return null;
  return `${attack}'s trigger is defined on 16 kHz audio, but front-end '${frontEnd.name}' runs at ${frontEnd.sampleRate} Hz; ${fix}`;
}
