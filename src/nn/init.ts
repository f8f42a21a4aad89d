// PyTorch's default initialisations, so that a model trained here starts from the same distribution
// as the same model in PyTorch (torch/nn/modules/{linear,conv,rnn,activation}.py, torch 1.13).
import { empty, noGrad, normalInPlace, type Tensor, uniformInPlace } from '../torch/index.ts';
import { parameter } from './module.ts';

/** fan_in of a weight [out, in, *kernel] (for Linear: [out, in]). */
export function fanIn(shape: number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

export function fanOut(shape: number[]): number {
  return shape[0] * shape.slice(2).reduce((a, b) => a * b, 1);
}

/** A parameter of the given shape, uniform in [-bound, bound]. */
export function uniformParameter(shape: number[], bound: number): Tensor {
  const t = empty(shape);
  noGrad(() => uniformInPlace(t, -bound, bound));
  return parameter(t);
}

/**
 * kaiming_uniform_(a=sqrt(5)) as nn.Linear/nn.Conv*.reset_parameters use: bound = 1/sqrt(fan_in)
 * (gain sqrt(2/(1+5)) times sqrt(3/fan_in)).
 */
export const defaultWeight = (shape: number[]): Tensor => uniformParameter(shape, 1 / Math.sqrt(fanIn(shape)));

/** The matching bias: uniform in +-1/sqrt(fan_in) of the weight. */
export const defaultBias = (size: number, weightShape: number[]): Tensor => uniformParameter([size], 1 / Math.sqrt(fanIn(weightShape)));

/** xavier_uniform_: bound = sqrt(6 / (fan_in + fan_out)) (nn.MultiheadAttention's in_proj_weight). */
export const xavierUniform = (shape: number[]): Tensor => uniformParameter(shape, Math.sqrt(6 / (fanIn(shape) + fanOut(shape))));

export function normalParameter(shape: number[], std: number): Tensor {
  const t = empty(shape);
  noGrad(() => normalInPlace(t, 0, std));
  return parameter(t);
}
