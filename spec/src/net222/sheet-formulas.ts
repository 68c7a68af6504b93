import { FORWARD_NAMES, WEIGHT_NAMES, type ForwardName, type Net222Config, type WeightName } from "./config.ts";
import { forward, gradients } from "./formulas.ts";

/**
 * The 2-2-2 formulas of formulas.ts as spreadsheet (Excel / LibreOffice A1) formula templates, so a workbook can
 * carry the contract's formulas rather than pasted numbers. Each template mirrors its TS expression term by term,
 * in the same evaluation order, so a spreadsheet that evaluates it in IEEE-754 doubles gets the TS value up to
 * its own EXP's last bits. Templates have no leading "=" (the form xlsx files and exceljs store).
 */

/** Per-row inputs of a sheet: targets, inputs, the fixed biases, the weights. */
export const SHEET_INPUT_NAMES = ["t1", "t2", "i1", "i2", "b1", "b2", ...WEIGHT_NAMES] as const;
export type SheetInputName = (typeof SHEET_INPUT_NAMES)[number];
export type SheetGradientName = `dE/d${WeightName}`;
export type SheetComputedName = ForwardName | SheetGradientName;
export type SheetColumnName = SheetInputName | SheetComputedName;

export const sheetGradientName = (w: WeightName): SheetGradientName => `dE/d${w}`;
export const SHEET_GRADIENT_NAMES: readonly SheetGradientName[] = WEIGHT_NAMES.map(sheetGradientName);
/** Computed columns in dependency order: forward pass, then gradients. */
export const SHEET_COMPUTED_NAMES: readonly SheetComputedName[] = [...FORWARD_NAMES, ...SHEET_GRADIENT_NAMES];

/** The A1 address (e.g. "J7" or "$A$5") of a column's cell; the caller owns the layout and the $ anchors. */
export type CellRef = (name: SheetColumnName) => string;
export type SheetFormula = (at: CellRef) => string;

const sigmoidOf = (x: string): string => `1/(1+EXP(-${x}))`;
/** (a − t)·a·(1 − a): δ of an output neuron, exactly as `gradients` forms d1/d2. */
const deltaOf = (at: CellRef, a: ForwardName, t: SheetInputName): string => `(${at(a)}-${at(t)})*${at(a)}*(1-${at(a)})`;
/** (δ1·wa + δ2·wb)·a·(1 − a): the back-propagated hidden term eh1/eh2 of `gradients`. */
const hiddenOf = (at: CellRef, wa: WeightName, wb: WeightName, a: ForwardName): string =>
  `(${deltaOf(at, "a_o1", "t1")}*${at(wa)}+${deltaOf(at, "a_o2", "t2")}*${at(wb)})*${at(a)}*(1-${at(a)})`;

/** Every computed column of a row, from cells of the same row. */
export const SHEET_FORMULAS: Readonly<Record<SheetComputedName, SheetFormula>> = {
  h1: (at) => `${at("w1")}*${at("i1")}+${at("w2")}*${at("i2")}+${at("b1")}`,
  a_h1: (at) => sigmoidOf(at("h1")),
  h2: (at) => `${at("w3")}*${at("i1")}+${at("w4")}*${at("i2")}+${at("b1")}`,
  a_h2: (at) => sigmoidOf(at("h2")),
  o1: (at) => `${at("w5")}*${at("a_h1")}+${at("w6")}*${at("a_h2")}+${at("b2")}`,
  a_o1: (at) => sigmoidOf(at("o1")),
  o2: (at) => `${at("w7")}*${at("a_h1")}+${at("w8")}*${at("a_h2")}+${at("b2")}`,
  a_o2: (at) => sigmoidOf(at("o2")),
  E1: (at) => `0.5*(${at("t1")}-${at("a_o1")})^2`,
  E2: (at) => `0.5*(${at("t2")}-${at("a_o2")})^2`,
  E_total: (at) => `${at("E1")}+${at("E2")}`,
  "dE/dw1": (at) => `${hiddenOf(at, "w5", "w7", "a_h1")}*${at("i1")}`,
  "dE/dw2": (at) => `${hiddenOf(at, "w5", "w7", "a_h1")}*${at("i2")}`,
  "dE/dw3": (at) => `${hiddenOf(at, "w6", "w8", "a_h2")}*${at("i1")}`,
  "dE/dw4": (at) => `${hiddenOf(at, "w6", "w8", "a_h2")}*${at("i2")}`,
  "dE/dw5": (at) => `${deltaOf(at, "a_o1", "t1")}*${at("a_h1")}`,
  "dE/dw6": (at) => `${deltaOf(at, "a_o1", "t1")}*${at("a_h2")}`,
  "dE/dw7": (at) => `${deltaOf(at, "a_o2", "t2")}*${at("a_h1")}`,
  "dE/dw8": (at) => `${deltaOf(at, "a_o2", "t2")}*${at("a_h2")}`,
};

/**
 * The weight of the next row: w − η·∂E/∂w from the previous row (`prev`), as `updateWeights` computes it;
 * `lrCell` is the learning-rate cell, normally anchored ("$B$2").
 */
export function sheetUpdateFormula(w: WeightName, prev: CellRef, lrCell: string): string {
  return `${prev(w)}-${lrCell}*${prev(sheetGradientName(w))}`;
}

/** Every column's float64 value for a row with config `c`: what a spreadsheet evaluating the templates shows. */
export function sheetRowValues(c: Net222Config): Record<SheetColumnName, number> {
  const f = forward(c);
  const g = gradients(c, f);
  const out = { ...f } as Record<SheetColumnName, number>;
  for (const k of SHEET_INPUT_NAMES) out[k] = c[k];
  for (const w of WEIGHT_NAMES) out[sheetGradientName(w)] = g[w];
  return out;
}
