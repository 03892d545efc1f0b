// RUN: qcc %s --split-input-file --verify-diagnostics | filecheck %s
// Every quant type and op verifier rejects malformed IR with a message naming the rule.
// A verifier's message starts its chunk's output line (`{{^}}`), which the IR dump after it
// does not; a parse error's message is preceded by the offending text.

func.func @StorageRangeOutsideStorageType() {
  %0 = "test.op"() : () -> !quant.uniform<i8<-129:127>:f32, 1.0>
  func.return
}
// CHECK: {{^}}illegal storage min and storage max: (-129:127)

// -----

func.func @EmptyStorageRange() {
  %0 = "test.op"() : () -> !quant.uniform<i8<1:1>:f32, 1.0>
  func.return
}
// CHECK: {{^}}illegal storage min and storage max: (1:1)

// -----

func.func @StorageTypeTooWide() {
  %0 = "test.op"() : () -> !quant.uniform<i33:f32, 1.0>
  func.return
}
// CHECK: {{^}}illegal storage type size: 33

// -----

func.func @StorageTypeNotAnInteger() {
  %0 = "test.op"() : () -> !quant.uniform<int8:f32, 1.0>
  func.return
}
// CHECK: illegal storage type prefix, expected iN or uN

// -----

func.func @ExpressedTypeNotAFloat() {
  %0 = "test.op"() : () -> !quant.uniform<i8:i32, 1.0>
  func.return
}
// CHECK: expressed type must be f16, bf16, f32 or f64

// -----

func.func @IntegerScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, 1>
  func.return
}
// CHECK: Expected float literal

// -----

func.func @NegativeScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, -1.0>
  func.return
}
// CHECK: {{^}}illegal scale: -1.000000e+00

// -----

func.func @ZeroScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, 0.0>
  func.return
}
// CHECK: {{^}}illegal scale: 0.000000e+00

// -----

func.func @ScaleOutsideExpressedType() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f16, 6.6e4>
  func.return
}
// CHECK: {{^}}scale 6.600000e+04 out of expressed type range [5.9604644775390625E-8, 6.550400e+04]

// -----

func.func @ZeroPointOutsideStorageRange() {
  %0 = "test.op"() : () -> !quant.uniform<u8:f32, 1.0:-1>
  func.return
}
// CHECK: {{^}}zero point -1 out of storage range [0, 255]

// -----

func.func @ZeroPointOutsideNarrowStorageRange() {
  %0 = "test.op"() : () -> !quant.uniform<i8<-127:127>:f32, 1.0:-128>
  func.return
}
// CHECK: {{^}}zero point -128 out of storage range [-127, 127]

// -----

func.func @PerAxisNegativeScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32:0, {1.0, -2.0}>
  func.return
}
// CHECK: {{^}}illegal scale: -2.000000e+00

// -----

func.func @PerAxisZeroPointOutsideStorageRange() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32:0, {1.0:3, 2.0:128}>
  func.return
}
// CHECK: {{^}}zero point 128 out of storage range [-128, 127]

// -----

func.func @PerAxisNegativeAxis() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32:-1, {1.0, 2.0}>
  func.return
}
// CHECK: {{^}}illegal quantized dimension: -1

// -----

func.func @PerAxisNoScales() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32:0, {}>
  func.return
}
// CHECK: {{^}}illegal number of scales and zero points: 0, 0

// -----

func.func @QuantizeChangesShape(%x: tensor<2x3xf32>) {
  %0 = quant.qcast %x : tensor<2x3xf32> to tensor<3x2x!quant.uniform<i8:f32, 1.0>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op failed to verify that input and result are both scalars or both tensors with matching shape

// -----

func.func @QuantizeStaticToDynamicShape(%x: tensor<2x3xf32>) {
  %0 = quant.qcast %x : tensor<2x3xf32> to tensor<?x3x!quant.uniform<i8:f32, 1.0>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op failed to verify that input and result are both scalars or both tensors with matching shape

// -----

func.func @DequantizeRankedToUnranked(%q: tensor<4x!quant.uniform<i8:f32, 1.0>>) {
  %0 = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> to tensor<*xf32>
  func.return
}
// CHECK: {{^}}'quant.dcast' op failed to verify that input and result are both scalars or both tensors with matching shape

// -----

func.func @DequantizeScalarToTensor(%q: !quant.uniform<i8:f32, 1.0>) {
  %0 = quant.dcast %q : !quant.uniform<i8:f32, 1.0> to tensor<f32>
  func.return
}
// CHECK: {{^}}'quant.dcast' op failed to verify that input and result are both scalars or both tensors with matching shape

// -----

func.func @QuantizeFloatTypeMismatch(%x: tensor<4xf64>) {
  %0 = quant.qcast %x : tensor<4xf64> to tensor<4x!quant.uniform<i8:f32, 1.0>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op expressed type in quantized type expected to match float type

// -----

func.func @DequantizeFloatTypeMismatch(%q: tensor<4x!quant.uniform<i8:f32, 1.0>>) {
  %0 = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> to tensor<4xf16>
  func.return
}
// CHECK: {{^}}'quant.dcast' op expressed type in quantized type expected to match float type

// -----

func.func @QuantizeToFloat(%x: tensor<4xf32>) {
  %0 = quant.qcast %x : tensor<4xf32> to tensor<4xf32>
  func.return
}
// CHECK: {{^}}f32 should be of base attribute quant.uniform

// -----

func.func @DequantizeInteger(%x: tensor<4xi8>) {
  %0 = quant.dcast %x : tensor<4xi8> to tensor<4xf32>
  func.return
}
// CHECK: {{^}}i8 should be of base attribute quant.uniform

// -----

func.func @RequantizeExpressedTypeMismatch(%q: tensor<4x!quant.uniform<i8:f32, 1.0>>) {
  %0 = quant.qcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> to tensor<4x!quant.uniform<i8:f16, 0.5>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op requantize expects input and result with the same expressed type

// -----

func.func @RequantizePerAxis(%q: tensor<2x!quant.uniform<i8:f32, 1.0>>) {
  %0 = quant.qcast %q : tensor<2x!quant.uniform<i8:f32, 1.0>> to tensor<2x!quant.uniform<i8:f32:0, {0.5, 0.25}>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op requantize supports per-tensor quantized types only

// -----

func.func @QuantizePerAxisScalar(%x: f32) {
  %0 = quant.qcast %x : f32 to !quant.uniform<i8:f32:0, {1.0, 2.0}>
  func.return
}
// CHECK: {{^}}'quant.qcast' op scalar types may not use per-axis quantization

// -----

func.func @QuantizePerAxisBeyondRank(%x: tensor<2x3xf32>) {
  %0 = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32:2, {1.0, 2.0}>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op quantized dimension must be less than tensor rank

// -----

func.func @DequantizePerAxisWrongScaleCount(%q: tensor<2x3x4x!quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>>) {
  %0 = quant.dcast %q : tensor<2x3x4x!quant.uniform<i8:f32:2, {1.0, 2.0, 3.0}>> to tensor<2x3x4xf32>
  func.return
}
// CHECK: {{^}}'quant.dcast' op quantized dimension size does not match number of scales

// -----

func.func @StatsMinAboveMax(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op layer_stats must have min <= max, got [1, -1]

// -----

func.func @StatsLayerStatsWrongShape(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 0.0, 1.0]> : tensor<3xf32>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op layer_stats must have shape [2], got [3]

// -----

func.func @StatsLayerStatsNotF32(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf64>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}f64 should be of base attribute f32

// -----

func.func @StatsChangesType(%x: tensor<4xf32>) {
  %0 = "quant.stats"(%x) <{layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>}> : (tensor<4xf32>) -> tensor<4xf64>
  func.return
}
// CHECK: {{^}}attribute tensor<4xf32> expected from variable 'T', but got tensor<4xf64>

// -----

func.func @StatsAxisWithoutAxisStats(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, axis = 0 : i64} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op axis and axis_stats must be given together

// -----

func.func @StatsAxisOutOfRange(%x: tensor<4x2xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, axis = 2 : i64, axis_stats = dense<[[-1.0, 1.0], [-1.0, 1.0]]> : tensor<2x2xf32>} : tensor<4x2xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op axis 2 out of range for a tensor of rank 2

// -----

func.func @StatsAxisStatsWrongRowCount(%x: tensor<4x3xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, axis = 1 : i64, axis_stats = dense<[[-1.0, 1.0], [-1.0, 1.0]]> : tensor<2x2xf32>} : tensor<4x3xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op axis_stats must have shape [3, 2], got [2, 2]

// -----

func.func @StatsAxisStatsNotPairs(%x: tensor<?x2xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, axis = 0 : i64, axis_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<?x2xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op axis_stats must have shape [?, 2], got [2]

// -----

func.func @StatsAxisStatsRowMinAboveMax(%x: tensor<4x2xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, axis = 1 : i64, axis_stats = dense<[[-1.0, 1.0], [1.0, 0.5]]> : tensor<2x2xf32>} : tensor<4x2xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op row 1 of axis_stats must have min <= max, got [1, 0.5]

// -----

func.func @StatsHistogramWithoutRange(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, histogram = dense<[1, 2]> : tensor<2xi64>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op histogram and histogram_range must be given together

// -----

func.func @StatsHistogramNegativeCount(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, histogram = dense<[1, -2]> : tensor<2xi64>, histogram_range = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op histogram counts must be non-negative

// -----

func.func @StatsHistogramNotRankOne(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, histogram = dense<[[1, 2]]> : tensor<1x2xi64>, histogram_range = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op histogram must have shape [B] with B >= 1 bins, got [1, 2]

// -----

func.func @StatsHistogramRangeMinAboveMax(%x: tensor<4xf32>) {
  %0 = quant.stats %x {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>, histogram = dense<[1, 2]> : tensor<2xi64>, histogram_range = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return
}
// CHECK: {{^}}'quant.stats' op histogram_range must have min <= max, got [1, -1]

// -----

func.func @InfiniteScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, 0x7FF0000000000000>
  func.return
}
// CHECK: {{^}}illegal scale: 0x7FF0000000000000

// -----

func.func @NaNScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, 0x7FF8000000000000>
  func.return
}
// CHECK: {{^}}illegal scale: 0x7FF8000000000000

// -----

func.func @PerAxisInfiniteScale() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32:0, {1.0, 0x7FF0000000000000}>
  func.return
}
// CHECK: {{^}}illegal scale: 0x7FF0000000000000

// -----

// A requantizing qcast is TFLite's QUANTIZE: only the storage pairs its kernel supports.
func.func @RequantizeToUnsupportedStorage(%q: tensor<4x!quant.uniform<i8:f32, 1.0>>) {
  %0 = quant.qcast %q : tensor<4x!quant.uniform<i8:f32, 1.0>> to tensor<4x!quant.uniform<u16:f32, 0.5>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op requantize from i8 to u16 is not a TFLite QUANTIZE (supported: i8 -> i8/u8/i16, u8 -> i8/u8/i16, i16 -> i8/i16/i32, i32 -> i8/i16)

// -----

func.func @RequantizeInt32ToInt32(%q: tensor<4x!quant.uniform<i32:f32, 1.0>>) {
  %0 = quant.qcast %q : tensor<4x!quant.uniform<i32:f32, 1.0>> to tensor<4x!quant.uniform<i32:f32, 0.5>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op requantize from i32 to i32 is not a TFLite QUANTIZE (supported: i8 -> i8/u8/i16, u8 -> i8/u8/i16, i16 -> i8/i16/i32, i32 -> i8/i16)

// -----

func.func @RequantizeInt16WithZeroPoint(%q: tensor<4x!quant.uniform<i16:f32, 1.0:3>>) {
  %0 = quant.qcast %q : tensor<4x!quant.uniform<i16:f32, 1.0:3>> to tensor<4x!quant.uniform<i16:f32, 0.5>>
  func.return
}
// CHECK: {{^}}'quant.qcast' op int16 -> int16 requantize needs zero points 0
