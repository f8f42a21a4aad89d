// Tensor element types, by name, and their c10::ScalarType codes (c10/core/ScalarType.h).

export type DType = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'complex64' | 'complex128' | 'bool' | 'bfloat16';

const codes: Record<DType, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  complex64: 9,
  complex128: 10,
  bool: 11,
  bfloat16: 15,
};

const names = new Map<number, DType>(Object.entries(codes).map(([name, code]) => [code, name as DType]));

export function dtypeCode(dtype: DType): number {
  const code = codes[dtype];
  if (code === undefined) throw new Error(`unknown dtype '${dtype}'; use one of ${Object.keys(codes).join(', ')}`);
  return code;
}

export function dtypeName(code: number): DType {
  const name = names.get(code);
  if (!name) throw new Error(`tensor has a scalar type (code ${code}) that kwshield does not name`);
  return name;
}

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    case 'int16':
    case 'float16':
    case 'bfloat16':
      return 2;
    case 'int32':
    case 'float32':
      return 4;
    case 'int64':
    case 'float64':
    case 'complex64':
      return 8;
    case 'complex128':
      return 16;
  }
}

export function isFloating(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/** c10::MemoryFormat codes. */
export const MemoryFormat = { contiguous: 0, preserve: 1, channelsLast: 2 } as const;
