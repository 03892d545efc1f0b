// RUN: qcc %s --split-input-file --pass-pipeline='builtin.module(cross-layer-equalization)' | filecheck %s
// RUN: qcc %s --split-input-file --pass-pipeline='builtin.module(cross-layer-equalization{relu6=split})' | filecheck %s --check-prefix=SPLIT

// cross-layer-equalization divides output channel i of the first layer (weights and bias) by
// s_i and multiplies input channel i of the second by s_i, s_i = sqrt(r1_i / r2_i) with r the
// per-channel max |w|. Here r1 = [4, 0.5] (rows of c1), r2 = [1, 2] (columns of c2), so
// s = [2, 0.5] and both ranges become sqrt(r1 r2) = [2, 1]. The second bias is untouched.
// CHECK-LABEL: func.func @ConvReluConvEqualized
// CHECK-NEXT:    %[[W1:.*]] = nn.constant {value = dense<{{\[\[\[\[}}2.000000e+00, 1.000000e+00]]], {{\[\[\[}}5.000000e-01, 1.000000e+00]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c1/w")
// CHECK-NEXT:    %[[B1:.*]] = nn.constant {value = dense<[5.000000e-01, -2.000000e+00]> : tensor<2xf32>} : tensor<2xf32> loc("c1/b")
// CHECK-NEXT:    %[[C1:.*]] = nn.conv2d %arg0, %[[W1]], %[[B1]] {{.*}}fused_activation = "RELU"{{.*}} loc("c1")
// CHECK-NEXT:    %[[W2:.*]] = nn.constant {value = dense<{{\[\[\[\[}}2.000000e+00, 2.500000e-01]]], {{\[\[\[}}5.000000e-01, 1.000000e+00]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c2/w")
// CHECK-NEXT:    %[[B2:.*]] = nn.constant {value = dense<[3.000000e+00, 5.000000e+00]> : tensor<2xf32>} : tensor<2xf32> loc("c2/b")
// CHECK-NEXT:    nn.conv2d %[[C1]], %[[W2]], %[[B2]] {{.*}} loc("c2")
func.func @ConvReluConvEqualized(%arg0: tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> {
  %w1 = nn.constant {value = dense<[[[[4.0, 2.0]]], [[[0.25, 0.5]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c1/w")
  %b1 = nn.constant {value = dense<[1.0, -1.0]> : tensor<2xf32>} : tensor<2xf32> loc("c1/b")
  %0 = nn.conv2d %arg0, %w1, %b1 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "RELU"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x1x1x2xf32> loc("c1")
  %w2 = nn.constant {value = dense<[[[[1.0, 0.5]]], [[[0.25, 2.0]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c2/w")
  %b2 = nn.constant {value = dense<[3.0, 5.0]> : tensor<2xf32>} : tensor<2xf32> loc("c2/b")
  %1 = nn.conv2d %0, %w2, %b2 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x1x1x2xf32> loc("c2")
  func.return %1 : tensor<1x1x1x2xf32>
}

// -----

// PReLU is positively homogeneous (alpha·x/s = (alpha·x)/s for s > 0): its alpha stays. The
// depthwise layer's channel is its input channel: r2 = [1, 2], so s = [2, 0.5] again.
// CHECK-LABEL: func.func @ConvPReluDepthwiseKeepsAlpha
// CHECK:         %[[W1:.*]] = nn.constant {value = dense<{{\[\[\[\[}}2.000000e+00, 1.000000e+00]]], {{\[\[\[}}5.000000e-01, 1.000000e+00]]]]> {{.*}} loc("c1/w")
// CHECK:         %[[C1:.*]] = nn.conv2d %arg0, %[[W1]] {{.*}} loc("c1")
// CHECK-NEXT:    %[[A:.*]] = nn.constant {value = dense<{{\[\[\[}}1.250000e-01, 2.500000e-01]]]> : tensor<1x1x2xf32>} : tensor<1x1x2xf32> loc("p/alpha")
// CHECK-NEXT:    %[[P:.*]] = nn.prelu %[[C1]], %[[A]] {{.*}} loc("p")
// CHECK-NEXT:    %[[W2:.*]] = nn.constant {value = dense<{{\[\[\[\[}}2.000000e+00, 1.000000e+00]]]]> : tensor<1x1x1x2xf32>} : tensor<1x1x1x2xf32> loc("dw/w")
// CHECK-NEXT:    nn.depthwise_conv2d %[[P]], %[[W2]] {{.*}} loc("dw")
func.func @ConvPReluDepthwiseKeepsAlpha(%arg0: tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> {
  %w1 = nn.constant {value = dense<[[[[4.0, 2.0]]], [[[0.25, 0.5]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c1/w")
  %0 = nn.conv2d %arg0, %w1 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c1")
  %a = nn.constant {value = dense<[[[0.125, 0.25]]]> : tensor<1x1x2xf32>} : tensor<1x1x2xf32> loc("p/alpha")
  %1 = nn.prelu %0, %a : (tensor<1x1x1x2xf32>, tensor<1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("p")
  %w2 = nn.constant {value = dense<[[[[1.0, 2.0]]]]> : tensor<1x1x1x2xf32>} : tensor<1x1x1x2xf32> loc("dw/w")
  %2 = nn.depthwise_conv2d %1, %w2 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE", depth_multiplier = 1 : i64} : (tensor<1x1x1x2xf32>, tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("dw")
  func.return %2 : tensor<1x1x1x2xf32>
}

// -----

// Fan-out: c1's result also leaves the function, where a rescaled value would show.
// CHECK-LABEL: func.func @FanOutIsSkipped
// CHECK-NEXT:    nn.constant {value = dense<{{\[\[\[\[}}4.000000e+00, 2.000000e+00]]], {{\[\[\[}}2.500000e-01, 5.000000e-01]]]]> {{.*}} loc("c1/w")
// CHECK-NEXT:    nn.conv2d {{.*}} loc("c1")
// CHECK-NEXT:    nn.constant {value = dense<{{\[\[\[\[}}1.000000e+00, 5.000000e-01]]], {{\[\[\[}}2.500000e-01, 2.000000e+00]]]]> {{.*}} loc("c2/w")
func.func @FanOutIsSkipped(%arg0: tensor<1x1x1x2xf32>) -> (tensor<1x1x1x2xf32>, tensor<1x1x1x2xf32>) {
  %w1 = nn.constant {value = dense<[[[[4.0, 2.0]]], [[[0.25, 0.5]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c1/w")
  %0 = nn.conv2d %arg0, %w1 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "RELU"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c1")
  %w2 = nn.constant {value = dense<[[[[1.0, 0.5]]], [[[0.25, 2.0]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c2/w")
  %1 = nn.conv2d %0, %w2 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c2")
  func.return %0, %1 : tensor<1x1x1x2xf32>, tensor<1x1x1x2xf32>
}

// -----

// RELU6 is not positively homogeneous. By default (relu6=keep) the pair keeps s = 1; with
// relu6=split the RELU6 becomes RELU and a per-channel clip at 6 / s = [3, 12].
// CHECK-LABEL: func.func @Relu6
// CHECK-NEXT:    nn.constant {value = dense<{{\[\[\[\[}}4.000000e+00, 2.000000e+00]]], {{\[\[\[}}2.500000e-01, 5.000000e-01]]]]> {{.*}} loc("c1/w")
// CHECK-NEXT:    nn.conv2d {{.*}}fused_activation = "RELU6"{{.*}} loc("c1")
// CHECK-NOT:     nn.minimum
// SPLIT-LABEL: func.func @Relu6
// SPLIT-NEXT:    %[[W1:.*]] = nn.constant {value = dense<{{\[\[\[\[}}2.000000e+00, 1.000000e+00]]], {{\[\[\[}}5.000000e-01, 1.000000e+00]]]]> {{.*}} loc("c1/w")
// SPLIT-NEXT:    %[[C1:.*]] = nn.conv2d %arg0, %[[W1]] {{.*}}fused_activation = "RELU"{{.*}} loc("c1")
// SPLIT-NEXT:    %[[BOUND:.*]] = nn.constant {value = dense<[3.000000e+00, 1.200000e+01]> : tensor<2xf32>} : tensor<2xf32> loc("c1/relu6_bound")
// SPLIT-NEXT:    %[[CLIP:.*]] = nn.minimum %[[C1]], %[[BOUND]] : (tensor<1x1x1x2xf32>, tensor<2xf32>) -> tensor<1x1x1x2xf32> loc("c1/relu6")
// SPLIT-NEXT:    %[[W2:.*]] = nn.constant {value = dense<{{\[\[\[\[}}2.000000e+00, 2.500000e-01]]], {{\[\[\[}}5.000000e-01, 1.000000e+00]]]]> {{.*}} loc("c2/w")
// SPLIT-NEXT:    nn.conv2d %[[CLIP]], %[[W2]] {{.*}} loc("c2")
func.func @Relu6(%arg0: tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> {
  %w1 = nn.constant {value = dense<[[[[4.0, 2.0]]], [[[0.25, 0.5]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c1/w")
  %0 = nn.conv2d %arg0, %w1 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "RELU6"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c1")
  %w2 = nn.constant {value = dense<[[[[1.0, 0.5]]], [[[0.25, 2.0]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c2/w")
  %1 = nn.conv2d %0, %w2 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c2")
  func.return %1 : tensor<1x1x1x2xf32>
}

// -----

// TANH is not positively homogeneous: nothing changes.
// CHECK-LABEL: func.func @TanhStops
// CHECK-NEXT:    nn.constant {value = dense<{{\[\[\[\[}}4.000000e+00, 2.000000e+00]]], {{\[\[\[}}2.500000e-01, 5.000000e-01]]]]> {{.*}} loc("c1/w")
func.func @TanhStops(%arg0: tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> {
  %w1 = nn.constant {value = dense<[[[[4.0, 2.0]]], [[[0.25, 0.5]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c1/w")
  %0 = nn.conv2d %arg0, %w1 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "TANH"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c1")
  %w2 = nn.constant {value = dense<[[[[1.0, 0.5]]], [[[0.25, 2.0]]]]> : tensor<2x1x1x2xf32>} : tensor<2x1x1x2xf32> loc("c2/w")
  %1 = nn.conv2d %0, %w2 {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x1x1x2xf32> loc("c2")
  func.return %1 : tensor<1x1x1x2xf32>
}
