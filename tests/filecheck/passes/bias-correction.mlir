// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='bias-correction' | filecheck %s
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='bias-correction{per-channel-fc=false}' | filecheck %s --check-prefix=PERTENSOR
// The pass consumes the means it reads (a second run changes nothing):
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='bias-correction,bias-correction' | filecheck %s

// bias-correction subtracts the mean output shift of int8 weight rounding, Σ_k ΔW[o,k]·mean[k],
// from the bias. The weights below have max|w| = 0.9921875 = 127·2^-7, so the scale is 2^-7
// and every ΔW is a power of two: 0.501953125 = 64.25·2^-7 rounds to 64 (ΔW = -2^-9),
// 0.123046875 = 15.75·2^-7 rounds to 16 (ΔW = +2^-9); 0.9921875 and 0.25 are exact.

// o=0: ΔW = [0, -2^-9], mean = [1, 2] -> shift -2^-8: 0.25 + 2^-8 = 0.25390625.
// o=1: ΔW = [+2^-9, 0] -> shift +2^-9: 0.5 - 2^-9 = 0.498046875.
// CHECK-LABEL: func.func @ConvBiasCorrected
// CHECK-NEXT:    %a = quant.stats %arg0 {layer_stats = dense<[0.000000e+00, 4.000000e+00]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
// CHECK-NEXT:    %[[W:.*]] = nn.constant {value = dense<{{\[\[\[\[}}0.9921875, 0.501953125]]], {{\[\[\[}}0.123046875, -0.9921875]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("conv/w")
// CHECK-NEXT:    %[[B:.*]] = nn.constant {value = dense<[0.25390625, 0.498046875]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
// CHECK-NEXT:    nn.conv2d %a, %[[W]], %[[B]] {{.*}} loc("conv")
// CHECK-NOT:     nn.constant
func.func @ConvBiasCorrected(%arg0: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[0.0, 4.0]> : tensor<2xf32>, channel_mean = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
  %w = nn.constant {value = dense<[[[[0.9921875, 0.501953125]]], [[[0.123046875, -0.9921875]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("conv/w")
  %b = nn.constant {value = dense<[0.25, 0.5]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv")
  func.return %0 : tensor<1x2x2x2xf32>
}

// -----

// An FC without a bias gets one: -shift. Per channel (default): row 1 has scale 2^-10, its
// 0.050048828125 = 51.25·2^-10 rounds to 51 (ΔW = -2^-12) -> shift = -2^-12·(-1) = 2^-12.
// Per tensor (scale 2^-7 for both rows): row 1 ΔW = [2^-10, -0.40625·2^-7] ->
// shift = 2^-10·0.5 + 0.003173828125 = 0.003662109375. Row 0: shift = -2^-9·(-1) = 2^-9.
// CHECK-LABEL: func.func @FullyConnectedGetsABias
// CHECK:         %[[W:.*]] = nn.constant {{.*}} loc("fc/w")
// CHECK-NEXT:    %[[B:.*]] = nn.constant {value = dense<[-0.001953125, -0.000244140625]> : tensor<2xf32>} : tensor<2xf32> loc("fc")
// CHECK-NEXT:    nn.fully_connected %a, %[[W]], %[[B]] {{.*}} -> tensor<1x2xf32> loc("fc")
// PERTENSOR-LABEL: func.func @FullyConnectedGetsABias
// PERTENSOR:       nn.constant {value = dense<[-0.001953125, -0.00366210938]> : tensor<2xf32>} : tensor<2xf32> loc("fc")
func.func @FullyConnectedGetsABias(%arg0: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-2.0, 2.0]> : tensor<2xf32>, channel_mean = dense<[0.5, -1.0]> : tensor<2xf32>} : tensor<1x2xf32>
  %w = nn.constant {value = dense<[[0.9921875, 0.501953125], [0.1240234375, 0.050048828125]]> : tensor<2x2xf32>} : tensor<2x2xf32> loc("fc/w")
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("fc")
  func.return %0 : tensor<1x2xf32>
}

// -----

// Depth multiplier 2: output channel oc reads input channel oc // 2 (mean [1, -2]); the two
// taps are summed. oc0: -2^-9·1; oc1: exact; oc2: -2^-9·(-2) = +2^-8; oc3: +2^-9·(-2) = -2^-8.
// CHECK-LABEL: func.func @DepthwiseMultiplierReadsChannelOverM
// CHECK:         %[[B:.*]] = nn.constant {value = dense<[0.001953125, 1.250000e-01, 0.24609375, 0.50390625]> : tensor<4xf32>} : tensor<4xf32> loc("dw/b")
// CHECK-NEXT:    nn.depthwise_conv2d %a, %w, %[[B]] {{.*}} loc("dw")
func.func @DepthwiseMultiplierReadsChannelOverM(%arg0: tensor<1x2x2x2xf32>) -> tensor<1x2x1x4xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-3.0, 3.0]> : tensor<2xf32>, channel_mean = dense<[1.0, -2.0]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
  %w = nn.constant {value = dense<[[[[0.9921875, 0.9921875, 0.9921875, 0.123046875], [0.501953125, 0.9921875, 0.501953125, -0.9921875]]]]> : tensor<1x1x2x4xf32>} : tensor<1x1x2x4xf32> loc("dw/w")
  %b = nn.constant {value = dense<[0.0, 0.125, 0.25, 0.5]> : tensor<4xf32>} : tensor<4xf32> loc("dw/b")
  %0 = nn.depthwise_conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE", depth_multiplier = 2 : i64} : (tensor<1x2x2x2xf32>, tensor<1x1x2x4xf32>, tensor<4xf32>) -> tensor<1x2x1x4xf32> loc("dw")
  func.return %0 : tensor<1x2x1x4xf32>
}

// -----

// Two groups of two input channels: o=0 reads mean [1, 2] (shift -2^-8), o=1 reads [3, 4]
// (shift -2^-9·4 = -2^-7).
// CHECK-LABEL: func.func @GroupedConvReadsItsGroup
// CHECK:         %[[B:.*]] = nn.constant {value = dense<[3.906250e-03, 7.812500e-03]> : tensor<2xf32>} : tensor<2xf32> loc("gconv/b")
// CHECK-NEXT:    nn.conv2d %a, %w, %[[B]] {{.*}} loc("gconv")
func.func @GroupedConvReadsItsGroup(%arg0: tensor<1x1x1x4xf32>) -> tensor<1x1x1x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[-4.0, 4.0]> : tensor<2xf32>, channel_mean = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>} : tensor<1x1x1x4xf32>
  %w = nn.constant {value = dense<[[[[0.9921875, 0.501953125]]], [[[0.9921875, 0.501953125]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("gconv/w")
  %b = nn.constant {value = dense<[0.0, 0.0]> : tensor<2xf32>} : tensor<2xf32> loc("gconv/b")
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x4xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x1x1x2xf32> loc("gconv")
  func.return %0 : tensor<1x1x1x2xf32>
}

// -----

// Each of the 4 input pixels scatters the kernel over 16 output pixels: shift =
// ΣΔW·mean·4/16 = -2^-9·2/4 = -2^-10; 0.25 + 2^-10 = 0.2509765625.
// CHECK-LABEL: func.func @TransposeConvScalesByInputOverOutputPixels
// CHECK:         %[[B:.*]] = nn.constant {value = dense<0.250976562> : tensor<1xf32>} : tensor<1xf32> loc("tconv/b")
// CHECK-NEXT:    nn.transpose_conv %a, %w, %[[B]] {{.*}} loc("tconv")
func.func @TransposeConvScalesByInputOverOutputPixels(%arg0: tensor<1x2x2x1xf32>) -> tensor<1x4x4x1xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[0.0, 4.0]> : tensor<2xf32>, channel_mean = dense<2.0> : tensor<1xf32>} : tensor<1x2x2x1xf32>
  %w = nn.constant {value = dense<[[[[0.9921875], [0.501953125]], [[0.0], [0.0]]]]> : tensor<1x2x2x1xf32>} : tensor<1x2x2x1xf32> loc("tconv/w")
  %b = nn.constant {value = dense<0.25> : tensor<1xf32>} : tensor<1xf32> loc("tconv/b")
  %0 = nn.transpose_conv %a, %w, %b {stride = array<i64: 2, 2>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>, tensor<1xf32>) -> tensor<1x4x4x1xf32> loc("tconv")
  func.return %0 : tensor<1x4x4x1xf32>
}

// -----

// No channel_mean (stats without one, or no stats at all): nothing changes.
// CHECK-LABEL: func.func @NoMeanNoChange
// CHECK:         %b = nn.constant {value = dense<[2.500000e-01, 5.000000e-01]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
// CHECK-NEXT:    nn.conv2d %a, %w, %b {{.*}} loc("conv")
// CHECK-NEXT:    nn.conv2d %arg0, %w, %b {{.*}} loc("conv_nostats")
// CHECK-NOT:     nn.constant
func.func @NoMeanNoChange(%arg0: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[0.0, 4.0]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
  %w = nn.constant {value = dense<[[[[0.9921875, 0.501953125]]], [[[0.123046875, -0.9921875]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("conv/w")
  %b = nn.constant {value = dense<[0.25, 0.5]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv")
  %1 = nn.conv2d %arg0, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv_nostats")
  %2 = nn.add %0, %1 {fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  func.return %2 : tensor<1x2x2x2xf32>
}

// -----

// A bias shared with an op that is not corrected is cloned, not changed in place.
// CHECK-LABEL: func.func @SharedBiasIsCloned
// CHECK:         %b = nn.constant {value = dense<[2.500000e-01, 5.000000e-01]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
// CHECK-NEXT:    %[[B:.*]] = nn.constant {value = dense<[0.25390625, 0.498046875]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
// CHECK-NEXT:    nn.conv2d %a, %w, %[[B]] {{.*}} loc("conv")
// CHECK-NEXT:    nn.conv2d %arg0, %w, %b {{.*}} loc("conv_nostats")
func.func @SharedBiasIsCloned(%arg0: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %a = quant.stats %arg0 {layer_stats = dense<[0.0, 4.0]> : tensor<2xf32>, channel_mean = dense<[1.0, 2.0]> : tensor<2xf32>} : tensor<1x2x2x2xf32>
  %w = nn.constant {value = dense<[[[[0.9921875, 0.501953125]]], [[[0.123046875, -0.9921875]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("conv/w")
  %b = nn.constant {value = dense<[0.25, 0.5]> : tensor<2xf32>} : tensor<2xf32> loc("conv/b")
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv")
  %1 = nn.conv2d %arg0, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv_nostats")
  %2 = nn.add %0, %1 {fused_activation = "NONE"} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  func.return %2 : tensor<1x2x2x2xf32>
}
