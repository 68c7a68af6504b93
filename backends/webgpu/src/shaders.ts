/**
 * The WGSL compute shaders of the backend, float32, NCHW activations (PyTorch's layout, so dropout indices and
 * state_dict tensors need no transposes). Parameters, their gradients and momentum each live in ONE flat buffer in
 * CNN_PARAMS order; shaders take offsets into it from their uniform block.
 *
 * Elementwise kernels run 256 invocations per workgroup on a 2-D grid (x ≤ 65535 workgroups): element
 * i = gid.x + gid.y · (num_workgroups.x · 256).
 */

const ELEMENT_INDEX = `
fn element(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * 256u; }
`;

/**
 * 3×3 convolution, stride 1, zero padding 1, 16 output channels, as a direct convolution: a workgroup computes an
 * 8×8 tile of output pixels × all 16 output channels of one image; the (8+2)² input tile of every input channel and
 * all the filter taps it needs are first staged in workgroup memory (6.4 KB + 9.2 KB), then each invocation sums its
 * pixel's 16 outputs as four vec4 accumulators over (in-channel, ky, kx).
 *
 * The same kernel gives the gradient with respect to the input ("transposed"): ∂L/∂x is the convolution of
 * ∂L/∂y with the filter rotated by 180° and with in/out channels swapped, W'[ci][co][k] = W[co][ci][8 − k].
 */
function conv3x3(transposed: boolean): string {
  const weight = transposed
    ? "prm[p.wOff + (ci * p.wCin + co) * 9u + (8u - k)]" // op's ci = forward conv's out-channel
    : "prm[p.wOff + (co * p.cin + ci) * 9u + k]";
  return /* wgsl */ `
struct P {
  n: u32, cin: u32, h: u32, w: u32,
  tilesX: u32, wOff: u32, bOff: u32, hasBias: u32,
  wCin: u32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const T: u32 = 8u;    // output tile edge
const E: u32 = 10u;   // input tile edge, T + 2
const CO: u32 = 16u;  // output channels
var<workgroup> tile: array<f32, 1600>;     // [ci < 16][E][E]
var<workgroup> wts: array<vec4<f32>, 576>; // [ci < 16][k < 9][co / 4]

@compute @workgroup_size(8, 8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tx = wid.x % p.tilesX;
  let ty = wid.x / p.tilesX;
  let n = wid.y;
  let li = lid.y * T + lid.x;
  let hw = p.h * p.w;
  let x0 = i32(tx * T) - 1;
  let y0 = i32(ty * T) - 1;
  for (var i = li; i < p.cin * E * E; i += 64u) {
    let ci = i / (E * E);
    let r = i % (E * E);
    let yy = y0 + i32(r / E);
    let xx = x0 + i32(r % E);
    var v = 0.0;
    if (yy >= 0 && xx >= 0 && u32(yy) < p.h && u32(xx) < p.w) {
      v = src[(n * p.cin + ci) * hw + u32(yy) * p.w + u32(xx)];
    }
    tile[i] = v;
  }
  for (var i = li; i < p.cin * 36u; i += 64u) {
    let q = i % 4u;
    let k = (i / 4u) % 9u;
    let ci = i / 36u;
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
      let co = q * 4u + j;
      v[j] = ${weight};
    }
    wts[i] = v;
  }
  workgroupBarrier();
  let ox = tx * T + lid.x;
  let oy = ty * T + lid.y;
  if (ox >= p.w || oy >= p.h) {
    return;
  }
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var ci = 0u; ci < p.cin; ci++) {
    for (var ky = 0u; ky < 3u; ky++) {
      for (var kx = 0u; kx < 3u; kx++) {
        let v = tile[ci * E * E + (lid.y + ky) * E + lid.x + kx];
        let b = (ci * 9u + ky * 3u + kx) * 4u;
        a0 += v * wts[b];
        a1 += v * wts[b + 1u];
        a2 += v * wts[b + 2u];
        a3 += v * wts[b + 3u];
      }
    }
  }
  if (p.hasBias == 1u) {
    a0 += vec4<f32>(prm[p.bOff], prm[p.bOff + 1u], prm[p.bOff + 2u], prm[p.bOff + 3u]);
    a1 += vec4<f32>(prm[p.bOff + 4u], prm[p.bOff + 5u], prm[p.bOff + 6u], prm[p.bOff + 7u]);
    a2 += vec4<f32>(prm[p.bOff + 8u], prm[p.bOff + 9u], prm[p.bOff + 10u], prm[p.bOff + 11u]);
    a3 += vec4<f32>(prm[p.bOff + 12u], prm[p.bOff + 13u], prm[p.bOff + 14u], prm[p.bOff + 15u]);
  }
  let o = n * CO * hw + oy * p.w + ox;
  for (var j = 0u; j < 4u; j++) {
    dst[o + j * hw] = a0[j];
    dst[o + (4u + j) * hw] = a1[j];
    dst[o + (8u + j) * hw] = a2[j];
    dst[o + (12u + j) * hw] = a3[j];
  }
}
`;
}

export const CONV3X3 = conv3x3(false);
export const CONV3X3_INPUT_GRAD = conv3x3(true);

/**
 * ∂L/∂W of the 3×3 convolution in two barrier-free passes: first one invocation per (image, out-channel, in-channel)
 * sums its nine taps over that image, dW[co][ci][ky][kx] += ∂L/∂y[n][co][y][x] · x[n][ci][y + ky − 1][x + kx − 1]
 * (rows and columns walked in order: no division per pixel); then each weight sums its images. Short sums in a fixed
 * order (accurate and deterministic), and no workgroup barriers, which a CPU implementation such as SwiftShader pays
 * for dearly (a workgroup-reduction version spent 90 % of backward in them).
 */
export const CONV3X3_FILTER_GRAD_PARTIAL = /* wgsl */ `
struct P { n: u32, cin: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;  // the convolution's input
@group(0) @binding(2) var<storage, read> dy: array<f32>;   // ∂L/∂(its output)
@group(0) @binding(3) var<storage, read_write> partial: array<f32>; // [image][co][ci][k]
${ELEMENT_INDEX}
const CO: u32 = 16u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  let pairs = CO * p.cin;
  if (i >= pairs * p.n) { return; }
  let nn = i / pairs;
  let o = i % pairs;
  let co = o / p.cin;
  let ci = o % p.cin;
  let hw = p.h * p.w;
  let gBase = (nn * CO + co) * hw;
  let xBase = (nn * p.cin + ci) * hw;
  var a: array<f32, 9>;
  for (var k = 0u; k < 9u; k++) { a[k] = 0.0; }
  for (var y = 0u; y < p.h; y++) {
    for (var x = 0u; x < p.w; x++) {
      let g = dy[gBase + y * p.w + x];
      for (var ky = 0u; ky < 3u; ky++) {
        if ((y == 0u && ky == 0u) || (y + ky > p.h)) { continue; } // row y + ky − 1 outside the image
        let row = xBase + (y + ky - 1u) * p.w;
        for (var kx = 0u; kx < 3u; kx++) {
          if ((x == 0u && kx == 0u) || (x + kx > p.w)) { continue; }
          a[ky * 3u + kx] += g * src[row + x + kx - 1u];
        }
      }
    }
  }
  for (var k = 0u; k < 9u; k++) { partial[nn * pairs * 9u + o * 9u + k] = a[k]; }
}
`;

export const CONV3X3_FILTER_GRAD_SUM = /* wgsl */ `
struct P { weights: u32, chunks: u32, wOff: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = element(gid, nwg);
  if (o >= p.weights) { return; }
  var s = 0.0;
  for (var c = 0u; c < p.chunks; c++) { s += partial[c * p.weights + o]; }
  grads[p.wOff + o] = s;
}
`;

/**
 * A sum over a workgroup of 256 in three barriers: every invocation leaves its partial in r, sixteen invocations each
 * add sixteen of them, and invocation 0 adds those sixteen (the result is valid in invocation 0 only). A log₂ tree
 * would take eight barriers, and barriers are what a CPU WebGPU (SwiftShader) pays for most.
 */
function sum256(pairs: ReadonlyArray<readonly [string, string]>): string {
  const each = (f: (r: string, out: string) => string) => pairs.map(([r, out]) => f(r, out)).join("\n");
  return `
  workgroupBarrier();
  if (li < 16u) {
${each((r) => `    var t_${r} = 0.0;\n    for (var j = 0u; j < 16u; j++) { t_${r} += ${r}[li * 16u + j]; }\n    ${r}[li * 16u] = t_${r};`)}
  }
  workgroupBarrier();
${each((_, out) => `  var ${out} = 0.0;`)}
  if (li == 0u) {
    for (var j = 0u; j < 16u; j++) {
${each((r, out) => `      ${out} += ${r}[j * 16u];`)}
    }
  }`;
}

/**
 * BatchNorm batch statistics, one workgroup per channel: the mean by a workgroup reduction, then Σd and Σd² of
 * d = x − mean₁ by a second (two-pass variance, with the classic correction Σd/m that removes the first mean's
 * rounding). Writes mean and 1/√(var + eps) for the apply kernel and, in train mode, moves the running statistics
 * (momentum, unbiased running variance) as PyTorch does.
 */
export const BN_STATS = /* wgsl */ `
struct P { n: u32, c: u32, hw: u32, sOff: u32, rOff: u32, train: u32, momentum: f32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> running: array<f32>;

var<workgroup> r0: array<f32, 256>;
var<workgroup> r1: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x;
  let li = lid.x;
  let m = p.n * p.hw;
  let fm = f32(m);
  var s = 0.0;
  for (var i = li; i < m; i += 256u) {
    s += x[((i / p.hw) * p.c + c) * p.hw + i % p.hw];
  }
  r0[li] = s;${sum256([["r0", "total"]])}
  if (li == 0u) { r0[0] = total; }
  workgroupBarrier();
  let mean1 = r0[0] / fm;
  workgroupBarrier();
  var s1 = 0.0;
  var s2 = 0.0;
  for (var i = li; i < m; i += 256u) {
    let d = x[((i / p.hw) * p.c + c) * p.hw + i % p.hw] - mean1;
    s1 += d;
    s2 += d * d;
  }
  r0[li] = s1;
  r1[li] = s2;${sum256([
    ["r0", "sumD"],
    ["r1", "sumD2"],
  ])}
  if (li == 0u) {
    let corr = sumD / fm;
    let variance = max((sumD2 - sumD * corr) / fm, 0.0); // biased: what normalises the batch
    let mean = mean1 + corr;
    stats[p.sOff + c] = mean;
    stats[p.sOff + p.c + c] = 1.0 / sqrt(variance + p.eps);
    if (p.train == 1u) {
      let unbiased = variance * fm / max(fm - 1.0, 1.0);
      running[p.rOff + c] = (1.0 - p.momentum) * running[p.rOff + c] + p.momentum * mean;
      running[p.rOff + p.c + c] = (1.0 - p.momentum) * running[p.rOff + p.c + c] + p.momentum * unbiased;
    }
  }
}
`;

/** Eval mode: the statistics the apply kernel uses are the running ones. */
export const BN_EVAL_STATS = /* wgsl */ `
struct P { c: u32, sOff: u32, rOff: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> running: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.c) { return; }
  stats[p.sOff + c] = running[p.rOff + c];
  stats[p.sOff + p.c + c] = 1.0 / sqrt(running[p.rOff + p.c + c] + p.eps);
}
`;

/** BatchNorm apply, fused with the ReLU that follows it: y = max(0, (x − mean)·invStd·γ + β). */
export const BN_APPLY_RELU = /* wgsl */ `
struct P { total: u32, c: u32, hw: u32, sOff: u32, gOff: u32, bOff: u32, relu: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> prm: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  let c = (i / p.hw) % p.c;
  var v = (x[i] - stats[p.sOff + c]) * stats[p.sOff + p.c + c] * prm[p.gOff + c] + prm[p.bOff + c];
  if (p.relu == 1u) { v = max(v, 0.0); }
  y[i] = v;
}
`;

/**
 * BatchNorm (+ ReLU) backward, the per-channel part, one workgroup per channel: with g = ∂L/∂y masked by the ReLU
 * (y > 0) and x̂ = (x − mean)·invStd, reduces dβ = Σg, dγ = Σg·x̂ and Σx̂. It also writes the preceding
 * convolution's bias gradient, Σ over the batch and image of ∂L/∂x = k·(Σg − dβ − dγ·Σx̂/m) with k = γ·invStd,
 * which is exactly −k·dγ·Σx̂/m because Σg ≡ dβ: summing the float32 ∂L/∂x instead would return its rounding noise
 * (the true value is ~0: a bias before BatchNorm is cancelled by the mean).
 */
export const BN_BACKWARD_REDUCE = /* wgsl */ `
struct P { n: u32, c: u32, hw: u32, sOff: u32, gOff: u32, dgOff: u32, dbOff: u32, cbOff: u32, relu: u32, hasConvBias: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> prm: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;

var<workgroup> r0: array<f32, 256>;
var<workgroup> r1: array<f32, 256>;
var<workgroup> r2: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x;
  let li = lid.x;
  let m = p.n * p.hw;
  let mean = stats[p.sOff + c];
  let inv = stats[p.sOff + p.c + c];
  var sb = 0.0;
  var sg = 0.0;
  var sx = 0.0;
  for (var i = li; i < m; i += 256u) {
    let idx = ((i / p.hw) * p.c + c) * p.hw + i % p.hw;
    var g = dy[idx];
    if (p.relu == 1u && !(y[idx] > 0.0)) { g = 0.0; }
    let xh = (x[idx] - mean) * inv;
    sb += g;
    sg += g * xh;
    sx += xh;
  }
  r0[li] = sb;
  r1[li] = sg;
  r2[li] = sx;${sum256([
    ["r0", "dBeta"],
    ["r1", "dGamma"],
    ["r2", "sumXhat"],
  ])}
  if (li == 0u) {
    grads[p.dbOff + c] = dBeta;
    grads[p.dgOff + c] = dGamma;
    if (p.hasConvBias == 1u) {
      grads[p.cbOff + c] = -(prm[p.gOff + c] * inv) * dGamma * sumXhat / f32(m);
    }
  }
}
`;

/** BatchNorm (+ ReLU) backward, elementwise, in place: ∂L/∂x = γ·invStd·(g − dβ/m − x̂·dγ/m). */
export const BN_BACKWARD_DX = /* wgsl */ `
struct P { total: u32, c: u32, hw: u32, sOff: u32, gOff: u32, dgOff: u32, dbOff: u32, relu: u32, m: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> prm: array<f32>;
@group(0) @binding(6) var<storage, read> grads: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  let c = (i / p.hw) % p.c;
  let inv = stats[p.sOff + p.c + c];
  var gi = g[i];
  if (p.relu == 1u && !(y[i] > 0.0)) { gi = 0.0; }
  let xh = (x[i] - stats[p.sOff + c]) * inv;
  let fm = f32(p.m);
  g[i] = prm[p.gOff + c] * inv * (gi - grads[p.dbOff + c] / fm - xh * (grads[p.dgOff + c] / fm));
}
`;

/**
 * Max-pool, size×size windows, stride size, and the first-max index of each window: the maximum is scanned in
 * row-major window order and replaced only by a strictly greater value, so ties keep the FIRST maximum (the spec's
 * rule, as PyTorch routes the gradient).
 */
export const MAXPOOL = /* wgsl */ `
struct P { total: u32, oh: u32, ow: u32, ih: u32, iw: u32, s: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  let plane = p.oh * p.ow;
  let nc = i / plane;
  let r = i % plane;
  let base = nc * p.ih * p.iw + (r / p.ow) * p.s * p.iw + (r % p.ow) * p.s;
  var best = x[base];
  var at = 0u;
  for (var k = 1u; k < p.s * p.s; k++) {
    let v = x[base + (k / p.s) * p.iw + k % p.s];
    if (v > best) {
      best = v;
      at = k;
    }
  }
  y[i] = best;
  arg[i] = at;
}
`;

/** Max-pool backward: each window's gradient goes to its first-max position, every other input gets 0. */
export const MAXPOOL_BACKWARD = /* wgsl */ `
struct P { total: u32, oh: u32, ow: u32, ih: u32, iw: u32, s: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  let plane = p.oh * p.ow;
  let nc = i / plane;
  let r = i % plane;
  let base = nc * p.ih * p.iw + (r / p.ow) * p.s * p.iw + (r % p.ow) * p.s;
  let g = dy[i];
  let at = arg[i];
  for (var k = 0u; k < p.s * p.s; k++) {
    dx[base + (k / p.s) * p.iw + k % p.s] = select(0.0, g, k == at);
  }
}
`;

/**
 * The contract's dropout mask (spec/src/rng.ts), computed in the shader from the element's NCHW index within the
 * batch: kept when mix32(mix32(mix32(seed ^ 0x9e3779b9) ^ (layer·0x85ebca6b + step)) ^ index) ≥ ⌊p·2³²⌋, kept values
 * scaled by 1/(1 − p). Multiplying by the same mask is also the backward pass.
 */
const MIX32 = `
fn mix32(x0: u32) -> u32 {
  var x = x0 ^ (x0 >> 16u);
  x = x * 0x21f0aaadu;
  x = x ^ (x >> 15u);
  x = x * 0x735a2d97u;
  return x ^ (x >> 15u);
}
`;
function dropout(inPlace: boolean): string {
  return /* wgsl */ `
struct P { total: u32, seed: u32, layer: u32, step: u32, threshold: u32, pad0: u32, pad1: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
${inPlace ? "@group(0) @binding(1) var<storage, read_write> y: array<f32>;" : "@group(0) @binding(1) var<storage, read> x: array<f32>;\n@group(0) @binding(2) var<storage, read_write> y: array<f32>;"}
${ELEMENT_INDEX}
${MIX32}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  let prefix = mix32(mix32(p.seed ^ 0x9e3779b9u) ^ (p.layer * 0x85ebca6bu + p.step));
  let keep = mix32(prefix ^ i) >= p.threshold;
  y[i] = select(0.0, ${inPlace ? "y[i]" : "x[i]"} * p.scale, keep);
}
`;
}
export const DROPOUT_IN_PLACE = dropout(true);
export const DROPOUT_COPY = dropout(false);

/** Global average pooling over each (image, channel) plane. */
export const GAP = /* wgsl */ `
struct P { total: u32, hw: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.hw; k++) { s += x[i * p.hw + k]; }
  y[i] = s / f32(p.hw);
}
`;

export const GAP_BACKWARD = /* wgsl */ `
struct P { total: u32, hw: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  dx[i] = dy[i / p.hw] / f32(p.hw);
}
`;

/** Linear layer y = x·Wᵀ + b, W [out, in] as PyTorch stores it. */
export const LINEAR = /* wgsl */ `
struct P { n: u32, fin: u32, fout: u32, wOff: u32, bOff: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.n * p.fout) { return; }
  let nn = i / p.fout;
  let o = i % p.fout;
  var s = 0.0;
  for (var k = 0u; k < p.fin; k++) { s += x[nn * p.fin + k] * prm[p.wOff + o * p.fin + k]; }
  y[i] = s + prm[p.bOff + o];
}
`;

/** Log-softmax over each row, max-shifted: y = x − max − log Σ exp(x − max). */
export const LOG_SOFTMAX = /* wgsl */ `
struct P { n: u32, k: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = element(gid, nwg);
  if (r >= p.n) { return; }
  let b = r * p.k;
  var mx = x[b];
  for (var j = 1u; j < p.k; j++) { mx = max(mx, x[b + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.k; j++) { s += exp(x[b + j] - mx); }
  let l = log(s);
  for (var j = 0u; j < p.k; j++) { y[b + j] = x[b + j] - mx - l; }
}
`;

/**
 * Mean NLL of the log-probabilities against the labels (one workgroup: per-sample terms, then a reduction) and its
 * gradient through the log-softmax: ∂L/∂logit = (exp(logProb) − onehot)/n.
 */
export const NLL_BACKWARD = /* wgsl */ `
struct P { n: u32, k: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> lp: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let li = lid.x;
  let count = f32(p.n);
  var s = 0.0;
  for (var i = li; i < p.n; i += 64u) {
    let label = labels[i];
    s -= lp[i * p.k + label];
    for (var j = 0u; j < p.k; j++) {
      dlogits[i * p.k + j] = (exp(lp[i * p.k + j]) - select(0.0, 1.0, j == label)) / count;
    }
  }
  red[li] = s;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  if (li == 0u) { loss[0] = red[0] / count; }
}
`;

/** Linear backward, parameter part: dW[o, k] = Σₙ dy[n, o]·x[n, k]; db[o] = Σₙ dy[n, o]. */
export const LINEAR_BACKWARD_PARAMS = /* wgsl */ `
struct P { n: u32, fin: u32, fout: u32, dwOff: u32, dbOff: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  let nw = p.fout * p.fin;
  if (i >= nw + p.fout) { return; }
  var s = 0.0;
  if (i < nw) {
    let o = i / p.fin;
    let k = i % p.fin;
    for (var nn = 0u; nn < p.n; nn++) { s += dy[nn * p.fout + o] * x[nn * p.fin + k]; }
    grads[p.dwOff + i] = s;
  } else {
    let o = i - nw;
    for (var nn = 0u; nn < p.n; nn++) { s += dy[nn * p.fout + o]; }
    grads[p.dbOff + o] = s;
  }
}
`;

/** Linear backward, input part: dx[n, k] = Σₒ dy[n, o]·W[o, k]. */
export const LINEAR_BACKWARD_INPUT = /* wgsl */ `
struct P { n: u32, fin: u32, fout: u32, wOff: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> prm: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.n * p.fin) { return; }
  let nn = i / p.fin;
  let k = i % p.fin;
  var s = 0.0;
  for (var o = 0u; o < p.fout; o++) { s += dy[nn * p.fout + o] * prm[p.wOff + o * p.fin + k]; }
  dx[i] = s;
}
`;

/**
 * SGD with momentum and weight decay over the flat parameter vector, PyTorch semantics (spec/src/cnn/optim.ts):
 * g = grad + wd·p; buf = g on the first step, else momentum·buf + g; p = p − lr·buf.
 */
export const SGD = /* wgsl */ `
struct P { total: u32, first: u32, lr: f32, momentum: f32, wd: f32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> prm: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;
${ELEMENT_INDEX}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.total) { return; }
  let g = grads[i] + p.wd * prm[i];
  var b = g;
  if (p.first == 0u) { b = p.momentum * buf[i] + g; }
  buf[i] = b;
  prm[i] = prm[i] - p.lr * b;
}
`;

/** Floats per 2-2-2 record: 8 weights, 11 forward values, 8 gradients. */
export const NET222_RECORD = 27;

/**
 * The 2-2-2 network: one invocation runs `steps` simultaneous updates from the given weights and writes steps + 1
 * records (weights before the update, forward values, ∂E/∂w by backpropagation). Config layout:
 * i1, i2, t1, t2, b1, b2, w1…w8.
 */
export const NET222 = /* wgsl */ `
struct P { steps: u32, lr: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> cfg: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

@compute @workgroup_size(1)
fn main() {
  let i1 = cfg[0];
  let i2 = cfg[1];
  let t1 = cfg[2];
  let t2 = cfg[3];
  let b1 = cfg[4];
  let b2 = cfg[5];
  var w: array<f32, 8>;
  for (var k = 0u; k < 8u; k++) { w[k] = cfg[6u + k]; }
  for (var s = 0u; s <= p.steps; s++) {
    let h1 = w[0] * i1 + w[1] * i2 + b1;
    let h2 = w[2] * i1 + w[3] * i2 + b1;
    let ah1 = sigmoid(h1);
    let ah2 = sigmoid(h2);
    let o1 = w[4] * ah1 + w[5] * ah2 + b2;
    let o2 = w[6] * ah1 + w[7] * ah2 + b2;
    let ao1 = sigmoid(o1);
    let ao2 = sigmoid(o2);
    let e1 = 0.5 * (t1 - ao1) * (t1 - ao1);
    let e2 = 0.5 * (t2 - ao2) * (t2 - ao2);
    // Backpropagation: output deltas, then hidden deltas through w5…w8.
    let d1 = (ao1 - t1) * ao1 * (1.0 - ao1);
    let d2 = (ao2 - t2) * ao2 * (1.0 - ao2);
    let eh1 = (d1 * w[4] + d2 * w[6]) * ah1 * (1.0 - ah1);
    let eh2 = (d1 * w[5] + d2 * w[7]) * ah2 * (1.0 - ah2);
    var g: array<f32, 8>;
    g[0] = eh1 * i1; g[1] = eh1 * i2; g[2] = eh2 * i1; g[3] = eh2 * i2;
    g[4] = d1 * ah1; g[5] = d1 * ah2; g[6] = d2 * ah1; g[7] = d2 * ah2;
    let b = s * ${NET222_RECORD}u;
    for (var k = 0u; k < 8u; k++) { out[b + k] = w[k]; }
    out[b + 8u] = h1; out[b + 9u] = ah1; out[b + 10u] = h2; out[b + 11u] = ah2;
    out[b + 12u] = o1; out[b + 13u] = ao1; out[b + 14u] = o2; out[b + 15u] = ao2;
    out[b + 16u] = e1; out[b + 17u] = e2; out[b + 18u] = e1 + e2;
    for (var k = 0u; k < 8u; k++) { out[b + 19u + k] = g[k]; }
    if (s < p.steps) {
      for (var k = 0u; k < 8u; k++) { w[k] = w[k] - p.lr * g[k]; }
    }
  }
}
`;

/** Every pipeline of the backend, by name. */
export const SHADERS: Readonly<Record<string, string>> = {
  conv3x3: CONV3X3,
  conv3x3InputGrad: CONV3X3_INPUT_GRAD,
  conv3x3FilterGradPartial: CONV3X3_FILTER_GRAD_PARTIAL,
  conv3x3FilterGradSum: CONV3X3_FILTER_GRAD_SUM,
  bnStats: BN_STATS,
  bnEvalStats: BN_EVAL_STATS,
  bnApply: BN_APPLY_RELU,
  bnBackwardReduce: BN_BACKWARD_REDUCE,
  bnBackwardDx: BN_BACKWARD_DX,
  maxpool: MAXPOOL,
  maxpoolBackward: MAXPOOL_BACKWARD,
  dropoutInPlace: DROPOUT_IN_PLACE,
  dropoutCopy: DROPOUT_COPY,
  gap: GAP,
  gapBackward: GAP_BACKWARD,
  linear: LINEAR,
  logSoftmax: LOG_SOFTMAX,
  nllBackward: NLL_BACKWARD,
  linearBackwardParams: LINEAR_BACKWARD_PARAMS,
  linearBackwardInput: LINEAR_BACKWARD_INPUT,
  sgd: SGD,
  net222: NET222,
};
