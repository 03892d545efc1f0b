// RUN: qcc %s --emit=mlir | filecheck %s
// quant.qcast, quant.dcast and quant.stats print in their custom forms.

// CHECK-LABEL: func.func @QuantizeDequantizePerTensor
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %x : tensor<1x8x8x3xf32> to tensor<1x8x8x3x!quant.uniform<i8:f32, 7.800000e-03:-1>>
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[Q]] : tensor<1x8x8x3x!quant.uniform<i8:f32, 7.800000e-03:-1>> to tensor<1x8x8x3xf32>
// CHECK-NEXT:    func.return %[[D]] : tensor<1x8x8x3xf32>
func.func @QuantizeDequantizePerTensor(%x: tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32> {
  %q = quant.qcast %x : tensor<1x8x8x3xf32> to tensor<1x8x8x3x!quant.uniform<i8:f32, 0.0078:-1>>
  %d = quant.dcast %q : tensor<1x8x8x3x!quant.uniform<i8:f32, 0.0078:-1>> to tensor<1x8x8x3xf32>
  func.return %d : tensor<1x8x8x3xf32>
}

// CHECK-LABEL: func.func @QuantizePerAxisOnLastDimension
// CHECK-NEXT:    %{{.*}} = quant.qcast %w : tensor<2x3x3x3xf32> to tensor<2x3x3x3x!quant.uniform<i8<-127:127>:f32:3, {1.200000e-02,9.000000e-03,2.500000e-02}>>
func.func @QuantizePerAxisOnLastDimension(%w: tensor<2x3x3x3xf32>) {
  %q = quant.qcast %w : tensor<2x3x3x3xf32> to tensor<2x3x3x3x!quant.uniform<i8<-127:127>:f32:3, {0.012, 0.009, 0.025}>>
  func.return
}

// A dynamic axis dimension may hold any number of scales.
// CHECK-LABEL: func.func @DequantizePerAxisDynamicDimension
// CHECK-NEXT:    %{{.*}} = quant.dcast %q : tensor<?x4x!quant.uniform<u8:f32:0, {2.000000e+00:10,3.000000e+00:20}>> to tensor<?x4xf32>
func.func @DequantizePerAxisDynamicDimension(%q: tensor<?x4x!quant.uniform<u8:f32:0, {2.0:10, 3.0:20}>>) {
  %d = quant.dcast %q : tensor<?x4x!quant.uniform<u8:f32:0, {2.0:10, 3.0:20}>> to tensor<?x4xf32>
  func.return
}

// CHECK-LABEL: func.func @ScalarAndUnrankedCasts
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %s : f32 to !quant.uniform<i8:f32, 5.000000e-01>
// CHECK-NEXT:    %{{.*}} = quant.dcast %[[Q]] : !quant.uniform<i8:f32, 5.000000e-01> to f32
// CHECK-NEXT:    %{{.*}} = quant.qcast %u : tensor<*xf16> to tensor<*x!quant.uniform<i16:f16, 2.500000e-01>>
func.func @ScalarAndUnrankedCasts(%s: f32, %u: tensor<*xf16>) {
  %q = quant.qcast %s : f32 to !quant.uniform<i8:f32, 0.5>
  %d = quant.dcast %q : !quant.uniform<i8:f32, 0.5> to f32
  %uq = quant.qcast %u : tensor<*xf16> to tensor<*x!quant.uniform<i16:f16, 0.25>>
  func.return
}

// A qcast between quantized types requantizes (TFLite's QUANTIZE, e.g. uint8 -> int8).
// CHECK-LABEL: func.func @Requantize
// CHECK-NEXT:    %{{.*}} = quant.qcast %q : tensor<4x!quant.uniform<u8:f32, 5.000000e-01:128>> to tensor<4x!quant.uniform<i8:f32, 5.000000e-01>>
func.func @Requantize(%q: tensor<4x!quant.uniform<u8:f32, 0.5:128>>) {
  %r = quant.qcast %q : tensor<4x!quant.uniform<u8:f32, 0.5:128>> to tensor<4x!quant.uniform<i8:f32, 0.5:0>>
  func.return
}

// CHECK-LABEL: func.func @StatsPerTensor
// CHECK-NEXT:    %[[S:.*]] = quant.stats %x {layer_stats = dense<[-1.000000e+00, 2.500000e+00]> : tensor<2xf32>} : tensor<1x4xf32>
// CHECK-NEXT:    func.return %[[S]] : tensor<1x4xf32>
func.func @StatsPerTensor(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %s = quant.stats %x {layer_stats = dense<[-1.0, 2.5]> : tensor<2xf32>} : tensor<1x4xf32>
  func.return %s : tensor<1x4xf32>
}

// CHECK-LABEL: func.func @StatsPerAxis
// CHECK-NEXT:    %{{.*}} = quant.stats %x {layer_stats = dense<[-1.000000e+00, 3.000000e+00]> : tensor<2xf32>, axis = 1 : i64, axis_stats = dense<{{\[}}[-1.000000e+00, 1.000000e+00], [0.000000e+00, 3.000000e+00]]> : tensor<2x2xf32>} : tensor<4x2xf32>
func.func @StatsPerAxis(%x: tensor<4x2xf32>) {
  %s = quant.stats %x {layer_stats = dense<[-1.0, 3.0]> : tensor<2xf32>, axis = 1 : i64, axis_stats = dense<[[-1.0, 1.0], [0.0, 3.0]]> : tensor<2x2xf32>} : tensor<4x2xf32>
  func.return
}

// CHECK-LABEL: func.func @StatsPerAxisDynamicDimension
// CHECK-NEXT:    %{{.*}} = quant.stats %x {layer_stats = dense<[0.000000e+00, 1.000000e+00]> : tensor<2xf32>, axis = 0 : i64, axis_stats = dense<{{\[}}[0.000000e+00, 1.000000e+00]]> : tensor<1x2xf32>} : tensor<?x2xf32>
func.func @StatsPerAxisDynamicDimension(%x: tensor<?x2xf32>) {
  %s = quant.stats %x {layer_stats = dense<[0.0, 1.0]> : tensor<2xf32>, axis = 0 : i64, axis_stats = dense<[[0.0, 1.0]]> : tensor<1x2xf32>} : tensor<?x2xf32>
  func.return
}

// CHECK-LABEL: func.func @StatsWithHistogram
// CHECK-NEXT:    %{{.*}} = quant.stats %x {layer_stats = dense<[-5.000000e-01, 1.500000e+00]> : tensor<2xf32>, histogram = dense<[3, 0, 7, 1]> : tensor<4xi64>, histogram_range = dense<[-1.000000e+00, 2.000000e+00]> : tensor<2xf32>} : tensor<8xf32>
func.func @StatsWithHistogram(%x: tensor<8xf32>) {
  %s = quant.stats %x {layer_stats = dense<[-0.5, 1.5]> : tensor<2xf32>, histogram = dense<[3, 0, 7, 1]> : tensor<4xi64>, histogram_range = dense<[-1.0, 2.0]> : tensor<2xf32>} : tensor<8xf32>
  func.return
}
