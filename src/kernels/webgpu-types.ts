// The slice of tfjs-backend-webgpu's program machinery our kernels use, typed structurally so the
// kernels need no import of the backend package (the runtime loads it after navigator.gpu exists).
// Mirrors WebGPUProgram in @tensorflow/tfjs-backend-webgpu/dist/webgpu_program.d.ts (4.22):
// the backend prepends bindings `result` (output), one array per variableName, and a `uniforms`
// struct (shapes, strides, `size` when size=true, then the program's own `uniforms` fields),
// and calls `main()` (or `main(index)` for flat programs with size=true) from its `_start` entry.
import type { tf } from '../core/tf.ts';

export interface WebGPUProgramLike {
  variableNames: string[];
  uniforms?: string;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  outputShape: number[];
  shaderKey: string;
  size?: boolean;
  getUserCode(): string;
}

export interface UniformEntry {
  type: 'int32' | 'uint32' | 'float32';
  data: number[];
}

export interface WebGPUBackendLike {
  runWebGPUProgram(program: WebGPUProgramLike, inputs: tf.TensorInfo[], dtype: 'float32', uniforms?: UniformEntry[]): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

/** Uniform values for a program's own `uniforms` fields declared `name : i32`, in declaration order. */
export function int32Uniforms(values: number[]): UniformEntry[] {
  return values.map((v) => ({ type: 'int32', data: [v] }));
}
