// RUN: qcc %s --split-input-file --pass-pipeline='quantize' | filecheck %s

// CHECK-LABEL: func.func @WeightsAndBiasBecomeIntegerStorage
// CHECK-NEXT:    nn.constant {value = dense<{{\[}}[64, -127], [127, 0]]> : tensor<2x2xi8>} : tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0019685039296746254}>>
// CHECK-NEXT:    nn.constant {value = dense<[1619, -3238]> : tensor<2xi32>} : tensor<2x!quant.uniform<i32:f32:0, {6.1756989452987909E-5,1.5439247363246977E-5}>>
func.func @WeightsAndBiasBecomeIntegerStorage() -> (tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0019685039296746254}>>, tensor<2x!quant.uniform<i32:f32:0, {6.1756989452987909E-5,1.5439247363246977E-5}>>) {
  %w = nn.constant {value = dense<[[0.5, -1.0], [0.25, 0.0]]> : tensor<2x2xf32>} : tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0019685039296746254}>>
  %b = nn.constant {value = dense<[0.1, -0.05]> : tensor<2xf32>} : tensor<2x!quant.uniform<i32:f32:0, {6.1756989452987909E-5,1.5439247363246977E-5}>>
  func.return %w, %b : tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0019685039296746254}>>, tensor<2x!quant.uniform<i32:f32:0, {6.1756989452987909E-5,1.5439247363246977E-5}>>
}

// -----

// Per-tensor constants add the zero point and clamp to the storage range.
// CHECK-LABEL: func.func @PerTensorConstantClampsWithZeroPoint
// CHECK-NEXT:    nn.constant {value = dense<[-128, -78, 127]> : tensor<3xi8>} : tensor<3x!quant.uniform<i8:f32, 1.000000e-02:-128>>
func.func @PerTensorConstantClampsWithZeroPoint() -> tensor<3x!quant.uniform<i8:f32, 0.01:-128>> {
  %c = nn.constant {value = dense<[0.0, 0.5, 9.0]> : tensor<3xf32>} : tensor<3x!quant.uniform<i8:f32, 0.01:-128>>
  func.return %c : tensor<3x!quant.uniform<i8:f32, 0.01:-128>>
}

// -----

// CHECK-LABEL: func.func @QuantizeOfConstantFolds
// CHECK-NEXT:    %[[C:.*]] = nn.constant {value = dense<[10, -20]> : tensor<2xi8>} : tensor<2x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK-NEXT:    func.return %[[C]]
func.func @QuantizeOfConstantFolds() -> tensor<2x!quant.uniform<i8:f32, 0.1>> {
  %c = nn.constant {value = dense<[1.0, -2.0]> : tensor<2xf32>} : tensor<2xf32>
  %q = quant.qcast %c : tensor<2xf32> to tensor<2x!quant.uniform<i8:f32, 0.1>>
  func.return %q : tensor<2x!quant.uniform<i8:f32, 0.1>>
}

// -----

// CHECK-LABEL: func.func @LeftoverStatsAreRemoved
// CHECK-NEXT:    func.return %arg0
func.func @LeftoverStatsAreRemoved(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %s = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return %s : tensor<4xf32>
}

// -----

// 16x8: an int64 bias becomes i64 storage integers (saturating at the int64 range, as
// TFLite's SymmetricBiasQuantize clamps), an int16 constant (a broadcast ADD operand of an
// int16 op) i16 ones, symmetric, rounded half away from zero.
// CHECK-LABEL: func.func @Int64BiasAndInt16Constant
// CHECK-NEXT:    nn.constant {value = dense<[416141, -9223372036854775808]> : tensor<2xi64>} : tensor<2x!quant.uniform<i64:f32:0, {2.4030322265389259E-7,6.0075805663473147E-8}>>
// CHECK-NEXT:    nn.constant {value = dense<[32767, -16384, 8192]> : tensor<3xi16>} : tensor<3x!quant.uniform<i16:f32, 6.1037018895149231E-5>>
func.func @Int64BiasAndInt16Constant() -> (tensor<2x!quant.uniform<i64:f32:0, {2.4030322265389259E-7,6.0075805663473147E-8}>>, tensor<3x!quant.uniform<i16:f32, 6.1037018895149231E-5>>) {
  %b = nn.constant {value = dense<[0.1, -1.0e30]> : tensor<2xf32>} : tensor<2x!quant.uniform<i64:f32:0, {2.4030322265389259E-7,6.0075805663473147E-8}>>
  %c = nn.constant {value = dense<[2.0, -1.0, 0.5]> : tensor<3xf32>} : tensor<3x!quant.uniform<i16:f32, 6.1037018895149231E-5>>
  func.return %b, %c : tensor<2x!quant.uniform<i64:f32:0, {2.4030322265389259E-7,6.0075805663473147E-8}>>, tensor<3x!quant.uniform<i16:f32, 6.1037018895149231E-5>>
}
