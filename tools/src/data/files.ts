/**
 * The four official MNIST files and their SHA-256 sums (of the .gz files as distributed by
 * yann.lecun.com and its mirrors). These are checksums, not data: the files themselves are never in the repo.
 */
export const MNIST_FILES = {
  trainImages: {
    name: "train-images-idx3-ubyte.gz",
    sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
  },
  trainLabels: {
    name: "train-labels-idx1-ubyte.gz",
    sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
  },
  testImages: {
    name: "t10k-images-idx3-ubyte.gz",
    sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
  },
  testLabels: {
    name: "t10k-labels-idx1-ubyte.gz",
    sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
  },
} as const;
export type MnistFileKey = keyof typeof MNIST_FILES;
export const MNIST_FILE_KEYS = Object.keys(MNIST_FILES) as MnistFileKey[];

/**
 * Mirrors tried in order (base URLs, file name appended). The original yann.lecun.com host now often refuses
 * anonymous downloads, so the torchvision mirrors come first. Override with env MNIST_MIRRORS (comma-separated).
 */
export const DEFAULT_MNIST_MIRRORS = [
  "https://ossci-datasets.s3.amazonaws.com/mnist/",
  "https://storage.googleapis.com/cvdf-datasets/mnist/",
  "http://yann.lecun.com/exdb/mnist/",
] as const;
