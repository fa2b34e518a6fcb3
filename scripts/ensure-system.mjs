// Checks (and, as root on Debian, installs) what the tests need outside npm: Debian's chromium
// for the browser tests (WebGPU through SwiftShader) and the Vulkan loader for Dawn in Node.
// Never downloads a browser of its own.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasVulkan = () => {
  try {
    return /libvulkan\.so\.1 /.test(execSync('ldconfig -p', { encoding: 'utf8' }));
  } catch {
    return false;
  }
};
const missing = [];
if (!existsSync(chromium)) missing.push('chromium');
if (!hasVulkan()) missing.push('libvulkan1');
if (missing.length === 0) process.exit(0);

const isRoot = process.getuid?.() === 0;
if (!isRoot || !existsSync('/usr/bin/apt-get')) {
  console.error(`Missing system packages: ${missing.join(', ')}. Install them with: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.error(`Installing ${missing.join(', ')} with apt-get (once)...`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execSync('apt-get update -qq', { stdio: 'inherit', env });
execSync(`apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`, { stdio: 'inherit', env });
