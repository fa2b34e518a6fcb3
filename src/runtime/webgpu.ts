// Gives this thread's tfjs its OWN WebGPU adapter and device (one per rank worker), and reports
// the adapter. Shared by the browser worker and Node (where `gpu` comes from the `webgpu` package).
import { tf } from '../core/tf.ts';
import type { AdapterInfo, BackendInfo } from '../core/protocol.ts';
import { registerTrainingKernels, trainingKernelsWanted } from '../kernels/index.ts';
import { registerCpuTrainingKernels } from '../kernels/cpu-kernels.ts';

/** This thread's WebGPU device (the one tfjs's webgpu backend computes on), if any. */
let current: GPUDevice | null = null;
const lossListeners = new Set<(reason: string) => void>();

const lossReason = (info: GPUDeviceLostInfo) => `device lost (${info.reason}${info.message ? `: ${info.message}` : ''})`;

/** Resolves with the reason once this thread's current WebGPU device is lost; null without one. */
export function deviceLost(): Promise<string> | null {
  return current ? current.lost.then(lossReason) : null;
}

/** Calls `listener` when this thread's current device is lost (the main context shows it); returns the unsubscribe. */
export function onDeviceLost(listener: (reason: string) => void): () => void {
  lossListeners.add(listener);
  return () => lossListeners.delete(listener);
}

/** Tests only: destroys the current device, as a loss would take it (GPUDevice.lost then resolves). */
export function destroyDeviceForTest(): void {
  current?.destroy();
}

/** Registers tfjs's webgpu backend on a device from `gpu`; falls back to cpu with a reason. */
export async function useWebGPU(gpu: GPU | undefined): Promise<BackendInfo> {
  if (!gpu) return useCpu('WebGPU is not available here (no navigator.gpu)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return useCpu('WebGPU found no adapter');
  const limits = adapter.limits;
  const requiredFeatures = (['timestamp-query', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  current = device;
  void device.lost.then((lost) => {
    if (current === device) for (const l of lossListeners) l(lossReason(lost));
  });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, info), 3);
  if (!(await tf.setBackend('webgpu'))) return useCpu('tfjs could not start its WebGPU backend');
  await tf.ready();
  const adapterInfo: AdapterInfo = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
  };
  // Our tiled Conv2DBackpropFilter and Conv2DBackpropInput unless SLIDE_LAB_KERNELS=stock.
  const kernels = registerTrainingKernels({ enabled: trainingKernelsWanted() });
  return { backend: 'webgpu', adapter: adapterInfo, kernels: kernels.length ? 'ours' : 'stock' };
}

/** The cpu backend, with our plain-array Conv2DBackpropFilter unless SLIDE_LAB_KERNELS=stock. */
export async function useCpu(reason?: string): Promise<BackendInfo> {
  current = null;
  await tf.setBackend('cpu');
  await tf.ready();
  const kernels = registerCpuTrainingKernels(trainingKernelsWanted()) ? 'ours' : 'stock';
  return { backend: 'cpu', adapter: null, kernels, ...(reason ? { fallbackReason: reason } : {}) };
}
