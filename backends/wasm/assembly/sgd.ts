// SGD with momentum and weight decay, in place (spec/src/cnn/optim.ts, PyTorch semantics: dampening 0, no Nesterov):
//   g ← grad + weightDecay·p;  buf ← g on the first step, else momentum·buf + g;  p ← p − lr·buf.
// Every parameter is decayed, BatchNorm and biases included, as torch.optim.SGD does by default.

/** One update of `count` parameters at p, gradients at grad, momentum buffers at buf (not read on the first step). */
export function sgdStep(p: usize, grad: usize, buf: usize, count: i32, lr: f32, momentum: f32, weightDecay: f32, first: bool): void {
  const vlr = f32x4.splat(lr), vm = f32x4.splat(momentum), vwd = f32x4.splat(weightDecay);
  const bytes = <usize>count << 2;
  let i: usize = 0;
  for (; i + 16 <= bytes; i += 16) {
    const g = f32x4.add(v128.load(grad + i), f32x4.mul(vwd, v128.load(p + i)));
    const b = first ? g : f32x4.add(f32x4.mul(vm, v128.load(buf + i)), g);
    v128.store(buf + i, b);
    v128.store(p + i, f32x4.sub(v128.load(p + i), f32x4.mul(vlr, b)));
  }
  for (; i < bytes; i += 4) {
    const g = load<f32>(grad + i) + weightDecay * load<f32>(p + i);
    const b = first ? g : momentum * load<f32>(buf + i) + g;
    store<f32>(buf + i, b);
    store<f32>(p + i, load<f32>(p + i) - lr * b);
  }
}
