// RUN: qcc %s --split-input-file --verify-diagnostics | filecheck %s
// Every nn verifier rejects a malformed op with a message naming the op and the rule.

func.func @ConvWrongResultShape(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %0 = nn.conv2d %a, %w {stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x8x8xf32>
  func.return %0 : tensor<1x8x8x8xf32>
}
// CHECK: 'nn.conv2d' op result shape [1, 8, 8, 8] does not match expected [1, 4, 4, 8]

// -----

func.func @ConvBadPadding(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %0 = nn.conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "FULL", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x8x8xf32>
  func.return %0 : tensor<1x8x8x8xf32>
}
// CHECK: 'nn.conv2d' op padding must be one of SAME, VALID, got 'FULL'

// -----

func.func @AddUnknownActivation(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.add %a, %a {fused_activation = "SIGMOID"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
// CHECK: 'nn.add' op fused_activation must be one of NONE, RELU, RELU_N1_TO_1, RELU6, TANH, got 'SIGMOID'

// -----

func.func @AddShapesDoNotBroadcast(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<2x3xf32> {
  %0 = nn.add %a, %b {fused_activation = "NONE"} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
// CHECK: 'nn.add' op operand shapes do not broadcast to the result shape

// -----

func.func @FullyConnectedRankOneWeights(%a: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<4xf32>} : tensor<4xf32>
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  func.return %0 : tensor<1x4xf32>
}
// CHECK: 'nn.fully_connected' op expects a rank-2 weight tensor

// -----

func.func @ReshapeChangesElementCount(%a: tensor<2x3xf32>) -> tensor<7xf32> {
  %0 = nn.reshape %a : (tensor<2x3xf32>) -> tensor<7xf32>
  func.return %0 : tensor<7xf32>
}
// CHECK: 'nn.reshape' op input and result must have the same number of elements

// -----

func.func @TransposeNotAPermutation(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = nn.transpose %a {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return %0 : tensor<3x2xf32>
}
// CHECK: 'nn.transpose' op perm must be a permutation of the input dimensions

// -----

func.func @ConcatenationSizesDoNotAddUp(%a: tensor<1x2xf32>) -> tensor<1x5xf32> {
  %0 = nn.concatenation %a, %a {axis = 1 : i32, fused_activation = "NONE"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x5xf32>
  func.return %0 : tensor<1x5xf32>
}
// CHECK: 'nn.concatenation' op inputs' sizes along the axis must add up to the result's

// -----

func.func @PadWrongPaddingCount(%a: tensor<2x3xf32>) -> tensor<4x3xf32> {
  %0 = nn.pad %a {paddings = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<4x3xf32>
  func.return %0 : tensor<4x3xf32>
}
// CHECK: 'nn.pad' op paddings must have two entries per input dimension

// -----

func.func @SplitUneven(%a: tensor<1x5xf32>) -> tensor<1x2xf32> {
  %0, %1 = nn.split %a {axis = 1 : i32} : (tensor<1x5xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32>)
  func.return %0 : tensor<1x2xf32>
}
// CHECK: 'nn.split' op the axis size must divide evenly into the results

// -----

func.func @ResizeChangesChannels(%a: tensor<1x4x4x3xf32>) -> tensor<1x8x8x4xf32> {
  %0 = nn.resize_bilinear %a {align_corners = false, half_pixel_centers = false} : (tensor<1x4x4x3xf32>) -> tensor<1x8x8x4xf32>
  func.return %0 : tensor<1x8x8x4xf32>
}
// CHECK: 'nn.resize_bilinear' op expects NHWC input and result with equal batch and channels

// -----

func.func @DepthToSpaceWrongShape(%a: tensor<1x4x4x8xf32>) -> tensor<1x8x8x8xf32> {
  %0 = nn.depth_to_space %a {block_size = 2 : i32} : (tensor<1x4x4x8xf32>) -> tensor<1x8x8x8xf32>
  func.return %0 : tensor<1x8x8x8xf32>
}
// CHECK: 'nn.depth_to_space' op result shape does not match expected [1, 8, 8, 2]

// -----

func.func @ConstantShapeMismatch() -> tensor<3xf32> {
  %0 = nn.constant {value = dense<1.000000e+00> : tensor<2xf32>} : tensor<3xf32>
  func.return %0 : tensor<3xf32>
}
// CHECK: 'nn.constant' op value shape does not match the result shape
