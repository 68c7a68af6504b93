// The 2-2-2 sigmoid network in float32: a two-layer dense network and backpropagation in matrix form
//   h = W1·x + b1, a_h = σ(h), o = W2·a_h + b2, a_o = σ(o), E = Σ ½(t − a_o)²
//   δo = (a_o − t) ⊙ a_o(1 − a_o), δh = (W2ᵀ δo) ⊙ a_h(1 − a_h), ∂E/∂W1 = δh xᵀ, ∂E/∂W2 = δo a_hᵀ.
// b1 and b2 are fixed (not trained). Records are f32 rows: weights w1..w8, then the 11 forward values
// h1 a_h1 h2 a_h2 o1 a_o1 o2 a_o2 E1 E2 E_total, then the gradients w1..w8 (27 floats).

/** Input block: i1 i2 t1 t2 w1..w8 b1 b2 (14 f32). */
const IN_W: usize = 4 * 4;
const IN_B1: usize = 12 * 4;
const IN_B2: usize = 13 * 4;
export const RECORD_FLOATS: i32 = 27;

@inline function sigmoid(x: f32): f32 {
  return 1 / (1 + Mathf.exp(-x));
}

/** Evaluates the network at the weights in w (8 f32) and writes one 27-float record at out. */
function evaluate(input: usize, w: usize, out: usize): void {
  const i1 = load<f32>(input), i2 = load<f32>(input, 4), t1 = load<f32>(input, 8), t2 = load<f32>(input, 12);
  const b1 = load<f32>(input + IN_B1), b2 = load<f32>(input + IN_B2);
  const w1 = load<f32>(w), w2 = load<f32>(w, 4), w3 = load<f32>(w, 8), w4 = load<f32>(w, 12);
  const w5 = load<f32>(w, 16), w6 = load<f32>(w, 20), w7 = load<f32>(w, 24), w8 = load<f32>(w, 28);
  const h1 = w1 * i1 + w2 * i2 + b1, h2 = w3 * i1 + w4 * i2 + b1;
  const ah1 = sigmoid(h1), ah2 = sigmoid(h2);
  const o1 = w5 * ah1 + w6 * ah2 + b2, o2 = w7 * ah1 + w8 * ah2 + b2;
  const ao1 = sigmoid(o1), ao2 = sigmoid(o2);
  const e1: f32 = 0.5 * (t1 - ao1) * (t1 - ao1), e2: f32 = 0.5 * (t2 - ao2) * (t2 - ao2);
  const do1 = (ao1 - t1) * ao1 * (1 - ao1), do2 = (ao2 - t2) * ao2 * (1 - ao2);
  const dh1 = (do1 * w5 + do2 * w7) * ah1 * (1 - ah1), dh2 = (do1 * w6 + do2 * w8) * ah2 * (1 - ah2);
  for (let k: usize = 0; k < 8; k++) store<f32>(out + k * 4, load<f32>(w + k * 4));
  const f = out + 32;
  store<f32>(f, h1); store<f32>(f, ah1, 4); store<f32>(f, h2, 8); store<f32>(f, ah2, 12);
  store<f32>(f, o1, 16); store<f32>(f, ao1, 20); store<f32>(f, o2, 24); store<f32>(f, ao2, 28);
  store<f32>(f, e1, 32); store<f32>(f, e2, 36); store<f32>(f, e1 + e2, 40);
  const g = out + 76;
  store<f32>(g, dh1 * i1); store<f32>(g, dh1 * i2, 4); store<f32>(g, dh2 * i1, 8); store<f32>(g, dh2 * i2, 12);
  store<f32>(g, do1 * ah1, 16); store<f32>(g, do1 * ah2, 20); store<f32>(g, do2 * ah1, 24); store<f32>(g, do2 * ah2, 28);
}

/**
 * steps simultaneous updates w ← w − lr·∂E/∂w from the input's weights, writing steps + 1 records at out
 * (record k: the weights before update k + 1 and the values at them). steps 0 evaluates once.
 */
export function net222Train(input: usize, lr: f32, steps: i32, out: usize): void {
  const rec = <usize>RECORD_FLOATS * 4;
  evaluate(input, input + IN_W, out);
  for (let s = 1; s <= steps; s++) {
    const prev = out + <usize>(s - 1) * rec, next = prev + rec;
    // the next record's weights, then the record evaluated at them
    for (let k: usize = 0; k < 8; k++) store<f32>(next + k * 4, load<f32>(prev + k * 4) - lr * load<f32>(prev + 76 + k * 4));
    evaluate(input, next, next);
  }
}
