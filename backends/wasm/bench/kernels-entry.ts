// AssemblyScript entry for bench/kernels.mjs: each conv kernel of assembly/ run `reps` times over n images.
import { conv3x3x16, conv3x3x16Filter } from "../assembly/conv";
import { winograd3x3x16, winogradFilter, winogradFilterGrad } from "../assembly/winograd";

export function direct(inp: usize, S: i32, w: usize, bias: usize, out: usize, n: i32, reps: i32): void {
  const P = S + 2;
  for (let r = 0; r < reps; r++) conv3x3x16(inp, <usize>(P * P) * 64, S, w, bias, out, <usize>(S * S) * 64, 0, n);
}
export function directFilter(inp: usize, S: i32, dz: usize, g: usize, n: i32, reps: i32): void {
  const P = S + 2;
  for (let r = 0; r < reps; r++) conv3x3x16Filter(inp, <usize>(P * P) * 64, S, dz, <usize>(P * P) * 64, g, 0, n);
}
export function winograd(inp: usize, S: i32, U: usize, bias: usize, out: usize, work: usize, n: i32, reps: i32): void {
  const P = S + 2;
  for (let r = 0; r < reps; r++)
    winograd3x3x16(inp, <usize>(P * P) * 64, S, U, bias, out, <usize>(S * S) * 64, work, 0, n);
}
export function winogradGrad(inp: usize, S: i32, dz: usize, g: usize, dU: usize, work: usize, n: i32, reps: i32): void {
  const P = S + 2;
  for (let r = 0; r < reps; r++)
    winogradFilterGrad(inp, <usize>(P * P) * 64, S, dz, <usize>(P * P) * 64, g, dU, work, 0, n);
}
export function transformFilter(w: usize, U: usize): void {
  winogradFilter(w, U);
}
