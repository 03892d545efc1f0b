// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='infer-scales' | filecheck %s
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='infer-scales{per-channel-fc=false}' | filecheck %s --check-prefix=PERTENSOR

// CHECK-LABEL: func.func @LogisticGetsFixedOutputScale(%arg0: tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>
// CHECK-NEXT:    %[[L:.*]] = nn.logistic %[[Q]] : (tensor<4x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>) -> tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>> loc("sig")
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[L]] : tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>> to tensor<4xf32>
// CHECK-NEXT:    func.return %[[D]] : tensor<4xf32>
func.func @LogisticGetsFixedOutputScale(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.logistic %a : (tensor<4xf32>) -> tensor<4xf32> loc("sig")
  %1 = quant.stats %0 {layer_stats = dense<[0.2, 0.7]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @ConcatRequantizesMismatchedInput
// CHECK-DAG:     %[[B:.*]] = quant.qcast %arg1 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.015686275437474251:-1>>
// CHECK-DAG:     %[[A:.*]] = quant.qcast %arg0 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>
// CHECK:         %[[R:.*]] = quant.qcast %[[A]] : tensor<1x2x!quant.uniform<i8:f32, 0.0078431377187371254:-1>> to tensor<1x2x!quant.uniform<i8:f32, 0.015686275437474251:-1>>
// CHECK-NEXT:    nn.concatenation %[[R]], %[[B]] {{.*}} -> tensor<1x4x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("cat")
func.func @ConcatRequantizesMismatchedInput(%arg0: tensor<1x2xf32>, %arg1: tensor<1x2xf32>) -> tensor<1x4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %b = quant.stats %arg1 {layer_stats = dense<[-2.0, 2.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %0 = nn.concatenation %a, %b {axis = 1 : i64, fused_activation = "NONE"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x4xf32> loc("cat")
  %1 = quant.stats %0 {layer_stats = dense<[-2.0, 2.0]> : tensor<2xf32>} : tensor<1x4xf32>
  func.return %1 : tensor<1x4xf32>
}

// -----

// CHECK-LABEL: func.func @ConvWeightsPerChannelBiasInt32
// CHECK:         quant.qcast %arg0 : tensor<1x2x2x2xf32> to tensor<1x2x2x2x!quant.uniform<i8:f32, 0.0078431377187371254:-128>>
// CHECK-NEXT:    nn.constant {value = dense<{{.*}}> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0078740157186985016}>>
// CHECK-NEXT:    nn.constant {value = dense<{{.*}}> : tensor<2xf32>} : tensor<2x!quant.uniform<i32:f32:0, {6.1756989452987909E-5,6.1756989452987909E-5}>>
// CHECK-NEXT:    nn.conv2d {{.*}} -> tensor<1x2x2x2x!quant.uniform<i8:f32, 0.015686275437474251:63>> loc("conv")
func.func @ConvWeightsPerChannelBiasInt32(%arg0: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[0.0, 2.0]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
  %w = nn.constant {value = dense<[[[[0.5, -1.0]]], [[[0.0, 0.0]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32>
  %b = nn.constant {value = dense<[0.1, 0.2]> : tensor<2xf32>} : tensor<2xf32>
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv")
  %1 = quant.stats %0 {layer_stats = dense<[-3.0, 1.0]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
  func.return %1 : tensor<1x2x2x2xf32>
}

// -----

// CHECK-LABEL: func.func @FullyConnectedWeights
// CHECK:         nn.constant {{.*}} : tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0019685039296746254}>>
// PERTENSOR-LABEL: func.func @FullyConnectedWeights
// PERTENSOR:     nn.constant {{.*}} : tensor<2x2x!quant.uniform<i8<-127:127>:f32, 0.0078740157186985016>>
func.func @FullyConnectedWeights(%arg0: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %w = nn.constant {value = dense<[[0.5, -1.0], [0.25, 0.125]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("fc")
  %1 = quant.stats %0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  func.return %1 : tensor<1x2xf32>
}

// -----

// CHECK-LABEL: func.func @ReshapeKeepsInputParams
// CHECK:         nn.reshape %{{.*}} : (tensor<1x4x!quant.uniform<i8:f32, 0.0078431377187371254:-64>>) -> tensor<2x2x!quant.uniform<i8:f32, 0.0078431377187371254:-64>> loc("reshape")
func.func @ReshapeKeepsInputParams(%arg0: tensor<1x4xf32>) -> tensor<2x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-0.5, 1.5]> : tensor<2xf32>} : tensor<1x4xf32>
  %0 = nn.reshape %a : (tensor<1x4xf32>) -> tensor<2x2xf32> loc("reshape")
  %1 = quant.stats %0 {layer_stats = dense<[-0.4, 1.0]> : tensor<2xf32>} : tensor<2x2xf32>
  func.return %1 : tensor<2x2xf32>
}

// -----

// CHECK-LABEL: func.func @DegenerateRangeGetsUnitScale
// CHECK:         nn.relu %{{.*}} -> tensor<4x!quant.uniform<i8:f32, 1.000000e+00:-128>> loc("relu")
func.func @DegenerateRangeGetsUnitScale(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[0.0, 0.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.relu %a : (tensor<4xf32>) -> tensor<4xf32> loc("relu")
  %1 = quant.stats %0 {layer_stats = dense<[0.0, 0.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @AddBroadcastConstantFromValues
// CHECK:         nn.constant {value = dense<[5.000000e-01, 3.000000e+00]> : tensor<2xf32>} : tensor<2x!quant.uniform<i8:f32, 0.011764706112444401:-128>>
// CHECK-NEXT:    nn.add {{.*}} -> tensor<2x2x!quant.uniform<i8:f32, 0.017647059634327888:-100>> loc("add")
func.func @AddBroadcastConstantFromValues(%arg0: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<2x2xf32>
  %c = nn.constant {value = dense<[0.5, 3.0]> : tensor<2xf32>} : tensor<2xf32>
  %0 = nn.add %a, %c {fused_activation = "NONE"} : (tensor<2x2xf32>, tensor<2xf32>) -> tensor<2x2xf32> loc("add")
  %1 = quant.stats %0 {layer_stats = dense<[-0.5, 4.0]> : tensor<2xf32>} : tensor<2x2xf32>
  func.return %1 : tensor<2x2xf32>
}

// -----

// CHECK: loc("uncalibrated"): 'nn.relu' op result #0 has no calibration range (quant.stats) and no quantization rule fixes it
func.func @UncalibratedResultIsAnError(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.relu %a : (tensor<4xf32>) -> tensor<4xf32> loc("uncalibrated")
  func.return %0 : tensor<4xf32>
}

// -----

// A HARD_SWISH whose input range is huge (a -7936 bias upstream) needs an output scale above
// input_scale / 128 (TFLite's output_multiplier_exponent <= 0): infer-scales widens it, the
// zero point re-nudged for the calibrated range.
// CHECK-LABEL: func.func @HardSwishWidensOutputScale
// CHECK:         nn.hard_swish %{{.*}} : (tensor<4x!quant.uniform<i8:f32, 31.160783767700195:127>>) -> tensor<4x!quant.uniform<i8:f32, 0.24344734847545624:-126>> loc("hswish")
func.func @HardSwishWidensOutputScale(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-7936.0, 10.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.hard_swish %a : (tensor<4xf32>) -> tensor<4xf32> loc("hswish")
  %1 = quant.stats %0 {layer_stats = dense<[-0.375, 10.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// ADD needs 2 * max(input scales) / (2^20 * output_scale) < 1 (else LiteRT aborts).
// CHECK-LABEL: func.func @AddWidensOutputScale
// CHECK:         nn.add {{.*}} -> tensor<4x!quant.uniform<i8:f32, 1.4959825421101414E-5:126>> loc("add")
func.func @AddWidensOutputScale(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1000.0, 1000.0]> : tensor<2xf32>} : tensor<4xf32>
  %b = quant.stats %arg1 {layer_stats = dense<[-1000.0, 1000.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.add %a, %b {fused_activation = "NONE"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add")
  %1 = quant.stats %0 {layer_stats = dense<[-1.0e-5, 1.0e-5]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// A same-scale consumer never imposes a type that breaks its producer's preconditions: the
// HARD_SWISH keeps its coarse scale and is requantized in front of the concatenation.
// CHECK-LABEL: func.func @ConcatRequantizesHardSwishInsteadOfRetargeting
// CHECK:         %[[H:.*]] = nn.hard_swish {{.*}} -> tensor<1x2x!quant.uniform<i8:f32, 0.030944099649786949:-116>> loc("hswish")
// CHECK-NEXT:    %[[R:.*]] = quant.qcast %[[H]] : tensor<1x2x!quant.uniform<i8:f32, 0.030944099649786949:-116>> to tensor<1x2x!quant.uniform<i8:f32, 0.011764706112444401:-43>> loc("cat")
// CHECK:         nn.concatenation %[[R]], {{.*}} -> tensor<1x4x!quant.uniform<i8:f32, 0.011764706112444401:-43>> loc("cat")
func.func @ConcatRequantizesHardSwishInsteadOfRetargeting(%arg0: tensor<1x2xf32>, %arg1: tensor<1x2xf32>) -> tensor<1x4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1000.0, 10.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %b = quant.stats %arg1 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %0 = nn.hard_swish %a : (tensor<1x2xf32>) -> tensor<1x2xf32> loc("hswish")
  %1 = quant.stats %0 {layer_stats = dense<[-0.375, 2.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %2 = nn.concatenation %1, %b {axis = 1 : i32, fused_activation = "NONE"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x4xf32> loc("cat")
  %3 = quant.stats %2 {layer_stats = dense<[-1.0, 2.0]> : tensor<2xf32>} : tensor<1x4xf32>
  func.return %3 : tensor<1x4xf32>
}

// -----

// CHECK: loc("offset"): 'nn.constant' op: 1 of 2 values are inf or NaN (operand #1 of 'nn.add' at loc("add")): cannot quantize it
func.func @InfiniteConstantIsAnError(%arg0: tensor<2xf32>) -> tensor<2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<2xf32>
  %c = nn.constant {value = dense<"0x0000003F0000807F"> : tensor<2xf32>} : tensor<2xf32> loc("offset")
  %0 = nn.add %a, %c {fused_activation = "NONE"} : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32> loc("add")
  %1 = quant.stats %0 {layer_stats = dense<[-1.0, 2.0]> : tensor<2xf32>} : tensor<2xf32>
  func.return %1 : tensor<2xf32>
}

// -----

// CHECK: loc("fc/weights"): 'nn.constant' op: 1 of 4 values are inf or NaN (weights of 'nn.fully_connected' at loc("fc")): cannot quantize it
func.func @NaNWeightsAreAnError(%arg0: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %w = nn.constant {value = dense<"0x0000003F0000C07F0000803F0000803F"> : tensor<2x2xf32>} : tensor<2x2xf32> loc("fc/weights")
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("fc")
  %1 = quant.stats %0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  func.return %1 : tensor<1x2xf32>
}

// -----

// CHECK: loc("relu"): 'nn.relu' op result #0: calibration range [-inf, 1] is not finite (inf or NaN): cannot quantize it
func.func @InfiniteCalibrationRangeIsAnError(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.relu %a : (tensor<4xf32>) -> tensor<4xf32> loc("relu")
  %1 = quant.stats %0 {layer_stats = dense<"0x000080FF0000803F"> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// A range as wide as float32's overflows 2^20 * output_scale inside TFLite's ADD.
// CHECK: loc("add"): 'nn.add' op 2^20 x output scale 2.352941e+36 overflows float32 (TFLite ADD QuantizeMultiplierSmallerThanOneExp): the output range is too wide
func.func @RangeTooWideForAddIsAnError(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-3.0e38, 3.0e38]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.add %a, %a {fused_activation = "NONE"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add")
  %1 = quant.stats %0 {layer_stats = dense<[-3.0e38, 3.0e38]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// int16 activations (16x8): the int8 producer's result is converted to int16 in front of
// the fully_connected (one qcast named after the value), the weights stay int8, the bias is
// int64 with scale input x weight scale, the result int16 symmetric (max|range| / 32767);
// the following logistic is int8 again (a conversion back).
// CHECK-LABEL: func.func @Int16FullyConnectedBetweenInt8Ops
// CHECK:         %[[R:.*]] = nn.relu {{.*}} -> tensor<1x2x!quant.uniform<i8:f32, 0.0039215688593685627:-128>> loc("relu")
// CHECK-NEXT:    nn.constant {{.*}} : tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,0.0019685039296746254}>>
// CHECK-NEXT:    nn.constant {{.*}} : tensor<2x!quant.uniform<i64:f32:0, {2.4030322265389259E-7,6.0075805663473147E-8}>>
// CHECK-NEXT:    %[[C:.*]] = quant.qcast %[[R]] : tensor<1x2x!quant.uniform<i8:f32, 0.0039215688593685627:-128>> to tensor<1x2x!quant.uniform<i16:f32, 3.0518509447574615E-5>> loc("relu/int16")
// CHECK-NEXT:    %[[F:.*]] = nn.fully_connected %[[C]], {{.*}} -> tensor<1x2x!quant.uniform<i16:f32, 6.1037018895149231E-5>> loc("fc")
// CHECK-NEXT:    %[[B:.*]] = quant.qcast %[[F]] : tensor<1x2x!quant.uniform<i16:f32, 6.1037018895149231E-5>> to tensor<1x2x!quant.uniform<i8:f32, 0.013725490309298038:18>> loc("fc/int8")
// CHECK-NEXT:    nn.logistic %[[B]] : {{.*}} -> tensor<1x2x!quant.uniform<i8:f32, 3.906250e-03:-128>> loc("sig")
func.func @Int16FullyConnectedBetweenInt8Ops(%arg0: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %0 = nn.relu %a : (tensor<1x2xf32>) -> tensor<1x2xf32> loc("relu")
  %r = quant.stats %0 {layer_stats = dense<[0.0, 1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %w = nn.constant {value = dense<[[0.5, -1.0], [0.25, 0.125]]> : tensor<2x2xf32>} : tensor<2x2xf32>
  %b = nn.constant {value = dense<[0.1, -0.05]> : tensor<2xf32>} : tensor<2xf32>
  %1 = nn.fully_connected %r, %w, %b {fused_activation = "NONE", keep_num_dims = false, qcc.precision = "int16"} : (tensor<1x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<1x2xf32> loc("fc")
  %f = quant.stats %1 {layer_stats = dense<[-2.0, 1.5]> : tensor<2xf32>} : tensor<1x2xf32>
  %2 = nn.logistic %f : (tensor<1x2xf32>) -> tensor<1x2xf32> loc("sig")
  %3 = quant.stats %2 {layer_stats = dense<[0.1, 0.9]> : tensor<2xf32>} : tensor<1x2xf32>
  func.return %3 : tensor<1x2xf32>
}

// -----

// A model input only int16 ops read is quantized to int16 directly; a same-scale op after
// an int16 op follows it (same type); LOGISTIC's int16 output is fixed at 1/32768, 0.
// CHECK-LABEL: func.func @Int16InputFollowerAndFixedRange
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %arg0 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i16:f32, 1.2207403779029846E-4>>
// CHECK-NEXT:    %[[S:.*]] = nn.logistic %[[Q]] {qcc.precision = "int16"} : {{.*}} -> tensor<1x4x!quant.uniform<i16:f32, 3.0517578125E-5>> loc("sig")
// CHECK-NEXT:    %[[R:.*]] = nn.reshape %[[S]] : {{.*}} -> tensor<4x!quant.uniform<i16:f32, 3.0517578125E-5>> loc("flat")
// CHECK-NEXT:    quant.dcast %[[R]] : tensor<4x!quant.uniform<i16:f32, 3.0517578125E-5>> to tensor<4xf32>
func.func @Int16InputFollowerAndFixedRange(%arg0: tensor<1x4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-4.0, 2.0]> : tensor<2xf32>} : tensor<1x4xf32>
  %0 = nn.logistic %a {qcc.precision = "int16"} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("sig")
  %1 = quant.stats %0 {layer_stats = dense<[0.01, 0.9]> : tensor<2xf32>} : tensor<1x4xf32>
  %2 = nn.reshape %1 : (tensor<1x4xf32>) -> tensor<4xf32> loc("flat")
  %3 = quant.stats %2 {layer_stats = dense<[0.01, 0.9]> : tensor<2xf32>} : tensor<4xf32>
  func.return %3 : tensor<4xf32>
}

// -----

// int16 ranges are the whole observed range (the histogram's extent), not the clipped range
// an int8 method chose (layer_stats [-0.5, 0.5] here); int8 values keep layer_stats.
// CHECK-LABEL: func.func @Int16TakesTheObservedRange
// CHECK-NEXT:    quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<i16:f32, 6.1037018895149231E-5>>
// CHECK-NEXT:    nn.relu {{.*}} -> tensor<4x!quant.uniform<i16:f32, 1.5259254723787308E-5>> loc("relu")
func.func @Int16TakesTheObservedRange(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-0.5, 0.5]> : tensor<2xf32>, histogram = dense<[1, 0, 0, 5, 5, 0, 0, 1]> : tensor<8xi64>, histogram_range = dense<[-2.0, 2.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.relu %a {qcc.precision = "int16"} : (tensor<4xf32>) -> tensor<4xf32> loc("relu")
  %1 = quant.stats %0 {layer_stats = dense<[0.0, 0.5]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}

// -----

// CHECK: loc("hs"): 'nn.hard_swish' op: qcc.precision = "int16" requested, but TFLite has no int16 (16x8) kernel for HARD_SWISH (its declaration lists int8 only)
func.func @Int16WithoutA16x8KernelIsAnError(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.hard_swish %a {qcc.precision = "int16"} : (tensor<4xf32>) -> tensor<4xf32> loc("hs")
  %1 = quant.stats %0 {layer_stats = dense<[-0.4, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return %1 : tensor<4xf32>
}
