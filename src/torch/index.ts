// The tensor engine's public surface.
export { backward, enableGrad, type GradOptions, grad, isGradEnabled, noGrad } from './autograd.ts';
export { bytesPerElement, type DType, isFloating } from './dtype.ts';
export * from './io/index.ts';
export * from './ops/creation.ts';
export { atenOp } from './ops/dispatch.ts';
export * from './ops/linalg.ts';
export * from './ops/math.ts';
export * from './ops/nn.ts';
export * from './ops/reduce.ts';
export * from './ops/shape.ts';
export * from './ops/signal.ts';
export { type OpProfile, profileOps } from './profile.ts';
export { cudaAvailable, type Device, getNumThreads, manualSeed, resolveDevice, setNumThreads } from './runtime.ts';
export { dispose, emptyCache, keep, type MemoryInfo, memory, resetPeakMemory, tidy } from './scope.ts';
export {
  loadScriptModule,
  type ScriptInput,
  ScriptModule,
  type ScriptOutput,
  type ScriptSubmodule,
  TorchScriptLoadError,
  unmangledType,
} from './script-module.ts';
export { Tensor } from './tensor.ts';
