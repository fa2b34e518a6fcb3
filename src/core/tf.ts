// The one place the core imports tfjs from. `@tensorflow/tfjs` brings tfjs-core with every
// gradient and chained op registered, and the cpu backend, in both module systems (Node loads
// its CommonJS bundle, Vite its ES modules). The webgpu backend is registered by the runtime
// (src/runtime/), because in Node it needs `navigator.gpu` from the `webgpu` package first.
import * as tf from '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
export type Variable = tf.Variable;

// Quiet tfjs's console advice (e.g. "install tfjs-node", which cannot install here).
tf.env().set('PROD', true);
