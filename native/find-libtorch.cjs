// Prints what binding.gyp needs to build against libtorch: $LIBTORCH (an unpacked official
// libtorch, CPU or CUDA) when set, else Debian's libtorch-dev under /usr.
// usage: node find-libtorch.cjs include|libdir|libs|abi
const fs = require('node:fs');
const path = require('node:path');

function findRoot() {
  const env = process.env.LIBTORCH;
  if (env) {
    if (!fs.existsSync(path.join(env, 'include', 'ATen', 'ATen.h'))) {
      throw new Error(`LIBTORCH=${env} does not look like a libtorch (no include/ATen/ATen.h). Unset it to use Debian's libtorch-dev.`);
    }
    return { include: path.join(env, 'include'), libdir: path.join(env, 'lib') };
  }
  const debianLib = '/usr/lib/x86_64-linux-gnu';
  const arch = fs.existsSync('/usr/lib/aarch64-linux-gnu/libtorch.so') ? '/usr/lib/aarch64-linux-gnu' : debianLib;
  if (!fs.existsSync('/usr/include/ATen/ATen.h')) {
    throw new Error('libtorch not found. Install it (as root: apt-get install -y libtorch-dev) or set LIBTORCH=/path/to/libtorch');
  }
  return { include: '/usr/include', libdir: arch };
}

const what = process.argv[2];
const root = findRoot();
const has = (lib) => fs.existsSync(path.join(root.libdir, lib));
if (what === 'include') {
  console.log([root.include, path.join(root.include, 'torch', 'csrc', 'api', 'include')].join(' '));
} else if (what === 'libdir') {
  console.log(root.libdir);
} else if (what === 'libs') {
  // CUDA kernels register themselves at load time, so libtorch_cuda must be linked even though
  // nothing references it directly (--no-as-needed).
  const cuda = has('libtorch_cuda.so') ? '-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed' : '';
  console.log(`-L${root.libdir} -Wl,-rpath,${root.libdir} -ltorch -ltorch_cpu -lc10 ${cuda}`.trim());
} else if (what === 'abi') {
  // Official pre-cxx11-ABI libtorch zips need _GLIBCXX_USE_CXX11_ABI=0; Debian's and cxx11 zips need 1.
  const cfg = path.join(root.libdir, '..', 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  const old = fs.existsSync(cfg) && fs.readFileSync(cfg, 'utf8').includes('_GLIBCXX_USE_CXX11_ABI=0');
  console.log(old ? 0 : 1);
} else {
  throw new Error(`unknown query ${what}`);
}
