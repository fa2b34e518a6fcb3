// Checks (and, as root on Debian, installs) what the tests need outside npm: Debian's chromium
// for the browser tests (WebGPU through SwiftShader) and the Vulkan loader for Dawn in Node, and
// Debian's python3-torch for the PyTorch torch.distributed proof test (scripts/torch-equivalence.test.ts,
// which skips, saying why, when /usr/bin/python3 cannot import torch: without root this only warns).
// Never downloads a browser of its own.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasVulkan = () => {
  try {
    return /libvulkan\.so\.1 /.test(execSync('ldconfig -p', { encoding: 'utf8' }));
  } catch {
    return false;
  }
};
// Cheap: finds the module without importing it (importing torch takes seconds).
const hasTorch = () =>
  spawnSync('/usr/bin/python3', ['-c', "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') else 1)"], { stdio: 'ignore' }).status === 0;
const missing = [];
if (!existsSync(chromium)) missing.push('chromium');
if (!hasVulkan()) missing.push('libvulkan1');
const optional = hasTorch() ? [] : ['python3-torch'];
if (missing.length === 0 && optional.length === 0) process.exit(0);

const isRoot = process.getuid?.() === 0;
if (!isRoot || !existsSync('/usr/bin/apt-get')) {
  if (optional.length) {
    console.error(`Note: /usr/bin/python3 cannot import torch, so the PyTorch equivalence test will be skipped. Install it with: sudo apt-get install -y ${optional.join(' ')}`);
  }
  if (missing.length === 0) process.exit(0);
  console.error(`Missing system packages: ${missing.join(', ')}. Install them with: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
const all = [...missing, ...optional];
console.error(`Installing ${all.join(', ')} with apt-get (once)...`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execSync('apt-get update -qq', { stdio: 'inherit', env });
if (missing.length) execSync(`apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`, { stdio: 'inherit', env });
if (optional.length) {
  try {
    execSync(`apt-get install -y -qq --no-install-recommends ${optional.join(' ')}`, { stdio: 'inherit', env });
  } catch (e) {
    // Optional: the PyTorch equivalence test then skips and says why.
    console.error(`Could not install ${optional.join(', ')} (${e.message.split('\n')[0]}); the PyTorch equivalence test will be skipped.`);
  }
}
