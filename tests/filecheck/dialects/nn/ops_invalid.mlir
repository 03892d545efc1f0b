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

// -----

// Axes, strides, windows, paddings and block sizes: what would crash a kernel or make LiteRT
// refuse the exported model.

func.func @MeanAxisOutOfRange(%a: tensor<2x3x4xf32>) -> tensor<2xf32> {
  %0 = nn.mean %a {axes = array<i64: -7, 2>, keep_dims = false} : (tensor<2x3x4xf32>) -> tensor<2xf32>
  func.return %0 : tensor<2xf32>
}
// CHECK: 'nn.mean' op axis -7 is out of range for rank 3 (expected -3 <= axis < 3)

// -----

func.func @SumAxisOutOfRange(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.sum %a {axes = array<i64: 2>, keep_dims = true} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
// CHECK: 'nn.sum' op axis 2 is out of range for rank 2 (expected -2 <= axis < 2)

// -----

func.func @ConvZeroStride(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %0 = nn.conv2d %a, %w {stride = array<i64: 0, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x8x8xf32>
  func.return %0 : tensor<1x8x8x8xf32>
}
// CHECK: 'nn.conv2d' op stride must be >= 1, got [0, 1]

// -----

func.func @ConvNegativeDilation(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %0 = nn.conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, -2>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x8x8xf32>
  func.return %0 : tensor<1x8x8x8xf32>
}
// CHECK: 'nn.conv2d' op dilation must be >= 1, got [1, -2]

// -----

func.func @ConvStrideWithOneEntry(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %0 = nn.conv2d %a, %w {stride = array<i64: 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x8x8xf32>
  func.return %0 : tensor<1x8x8x8xf32>
}
// CHECK: 'nn.conv2d' op stride must have two entries (height, width), got [1]

// -----

func.func @ConvFilterLargerThanInput(%a: tensor<1x2x2x3xf32>) -> tensor<1x0x0x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %0 = nn.conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x2x2x3xf32>, tensor<8x3x3x3xf32>) -> tensor<1x0x0x8xf32>
  func.return %0 : tensor<1x0x0x8xf32>
}
// CHECK: 'nn.conv2d' op the dilated filter is larger than the input [1, 2, 2, 3] (VALID)

// -----

func.func @DepthwiseStrideBeyondInt16(%a: tensor<1x8x8x3xf32>) -> tensor<1x1x1x3xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<1x3x3x3xf32>} : tensor<1x3x3x3xf32>
  %0 = nn.depthwise_conv2d %a, %w {stride = array<i64: 40000, 40000>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE", depth_multiplier = 1 : i32} : (tensor<1x8x8x3xf32>, tensor<1x3x3x3xf32>) -> tensor<1x1x1x3xf32>
  func.return %0 : tensor<1x1x1x3xf32>
}
// CHECK: 'nn.depthwise_conv2d' op stride must be in [1, 32767], got [40000, 40000]

// -----

func.func @DepthwiseZeroDepthMultiplier(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<1x3x3x3xf32>} : tensor<1x3x3x3xf32>
  %0 = nn.depthwise_conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE", depth_multiplier = 0 : i32} : (tensor<1x8x8x3xf32>, tensor<1x3x3x3xf32>) -> tensor<1x8x8x3xf32>
  func.return %0 : tensor<1x8x8x3xf32>
}
// CHECK: 'nn.depthwise_conv2d' op depth_multiplier 0 must be >= 1 and give the filter's 3 channels from the input's 3

// -----

func.func @DepthwiseFilterNotOneHigh(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<2x3x3x3xf32>} : tensor<2x3x3x3xf32>
  %0 = nn.depthwise_conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE", depth_multiplier = 1 : i32} : (tensor<1x8x8x3xf32>, tensor<2x3x3x3xf32>) -> tensor<1x8x8x3xf32>
  func.return %0 : tensor<1x8x8x3xf32>
}
// CHECK: 'nn.depthwise_conv2d' op filter must have shape [1, H, W, C*M], got [2, 3, 3, 3]

// -----

func.func @TransposeConvZeroStride(%a: tensor<1x4x4x3xf32>) -> tensor<1x8x8x2xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<2x3x3x3xf32>} : tensor<2x3x3x3xf32>
  %0 = nn.transpose_conv %a, %w {stride = array<i64: 2, 0>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x4x4x3xf32>, tensor<2x3x3x3xf32>) -> tensor<1x8x8x2xf32>
  func.return %0 : tensor<1x8x8x2xf32>
}
// CHECK: 'nn.transpose_conv' op stride must be in [1, 32767], got [2, 0]

// -----

func.func @TransposeConvBatchChanges(%a: tensor<1x4x4x3xf32>) -> tensor<2x8x8x2xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<2x3x3x3xf32>} : tensor<2x3x3x3xf32>
  %0 = nn.transpose_conv %a, %w {stride = array<i64: 2, 2>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x4x4x3xf32>, tensor<2x3x3x3xf32>) -> tensor<2x8x8x2xf32>
  func.return %0 : tensor<2x8x8x2xf32>
}
// CHECK: 'nn.transpose_conv' op result batch must equal the input batch

// -----

func.func @MaxPoolZeroFilter(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32> {
  %0 = nn.max_pool2d %a {filter_size = array<i64: 0, 2>, stride = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32>
  func.return %0 : tensor<1x8x8x3xf32>
}
// CHECK: 'nn.max_pool2d' op filter_size must be >= 1, got [0, 2]

// -----

func.func @AvgPoolZeroStride(%a: tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32> {
  %0 = nn.avg_pool2d %a {filter_size = array<i64: 2, 2>, stride = array<i64: 0, 0>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32>
  func.return %0 : tensor<1x8x8x3xf32>
}
// CHECK: 'nn.avg_pool2d' op stride must be >= 1, got [0, 0]

// -----

func.func @AvgPoolWindowLargerThanInput(%a: tensor<1x2x2x3xf32>) -> tensor<1x0x0x3xf32> {
  %0 = nn.avg_pool2d %a {filter_size = array<i64: 3, 3>, stride = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x2x2x3xf32>) -> tensor<1x0x0x3xf32>
  func.return %0 : tensor<1x0x0x3xf32>
}
// CHECK: 'nn.avg_pool2d' op the window is larger than the input [1, 2, 2, 3] (VALID)

// -----

func.func @PadNegative(%a: tensor<4x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.pad %a {paddings = array<i64: -1, -1, 0, 0>} : (tensor<4x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
// CHECK: 'nn.pad' op paddings must be >= 0, got [-1, -1, 0, 0]

// -----

func.func @PadRankSix(%a: tensor<1x1x1x1x1x2xf32>) -> tensor<1x1x1x1x1x4xf32> {
  %0 = nn.pad %a {paddings = array<i64: 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1>} : (tensor<1x1x1x1x1x2xf32>) -> tensor<1x1x1x1x1x4xf32>
  func.return %0 : tensor<1x1x1x1x1x4xf32>
}
// CHECK: 'nn.pad' op expects an input of rank <= 5

// -----

func.func @StridedSliceZeroStride(%a: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %0 = nn.strided_slice %a {begin = array<i64: 0, 0>, end = array<i64: 4, 4>, strides = array<i64: 0, 1>, begin_mask = 0 : i32, end_mask = 0 : i32, ellipsis_mask = 0 : i32, new_axis_mask = 0 : i32, shrink_axis_mask = 0 : i32, offset = false} : (tensor<4x4xf32>) -> tensor<2x4xf32>
  func.return %0 : tensor<2x4xf32>
}
// CHECK: 'nn.strided_slice' op strides must be non-zero int32 values, got [0, 1]

// -----

func.func @StridedSliceWrongResultShape(%a: tensor<4x4xf32>) -> tensor<3x4xf32> {
  %0 = nn.strided_slice %a {begin = array<i64: 0, 0>, end = array<i64: 4, 4>, strides = array<i64: 2, 1>, begin_mask = 0 : i32, end_mask = 0 : i32, ellipsis_mask = 0 : i32, new_axis_mask = 0 : i32, shrink_axis_mask = 0 : i32, offset = false} : (tensor<4x4xf32>) -> tensor<3x4xf32>
  func.return %0 : tensor<3x4xf32>
}
// CHECK: 'nn.strided_slice' op result shape does not match expected [2, 4]

// -----

func.func @StridedSliceShrinkIndexOutOfRange(%a: tensor<4x4xf32>) -> tensor<4xf32> {
  %0 = nn.strided_slice %a {begin = array<i64: 9, 0>, end = array<i64: 10, 4>, strides = array<i64: 1, 1>, begin_mask = 0 : i32, end_mask = 0 : i32, ellipsis_mask = 0 : i32, new_axis_mask = 0 : i32, shrink_axis_mask = 1 : i32, offset = false} : (tensor<4x4xf32>) -> tensor<4xf32>
  func.return %0 : tensor<4xf32>
}
// CHECK: 'nn.strided_slice' op index 9 of shrunk axis 0 is out of range

// -----

func.func @SliceBeyondInput(%a: tensor<4x4xf32>) -> tensor<3x4xf32> {
  %0 = nn.slice %a {begin = array<i64: 2, 0>, size = array<i64: 3, -1>} : (tensor<4x4xf32>) -> tensor<3x4xf32>
  func.return %0 : tensor<3x4xf32>
}
// CHECK: 'nn.slice' op slice [2, 2 + 3) of dimension 0 does not fit its size 4 (expected 0 <= begin, size -1 or begin + size <= size)

// -----

func.func @ConcatenationAxisOutOfRange(%a: tensor<1x2xf32>) -> tensor<1x4xf32> {
  %0 = nn.concatenation %a, %a {axis = 2 : i32, fused_activation = "NONE"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x4xf32>
  func.return %0 : tensor<1x4xf32>
}
// CHECK: 'nn.concatenation' op axis 2 is out of range for rank 2 (expected -2 <= axis < 2)

// -----

func.func @ConcatenationFusedActivation(%a: tensor<1x2xf32>) -> tensor<1x4xf32> {
  %0 = nn.concatenation %a, %a {axis = 1 : i32, fused_activation = "RELU"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x4xf32>
  func.return %0 : tensor<1x4xf32>
}
// CHECK: 'nn.concatenation' op fused_activation must be NONE, got 'RELU'

// -----

func.func @SplitAxisOutOfRange(%a: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %0, %1 = nn.split %a {axis = -3 : i32} : (tensor<2x4xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>)
  func.return %0 : tensor<2x2xf32>
}
// CHECK: 'nn.split' op axis -3 is out of range for rank 2 (expected -2 <= axis < 2)

// -----

func.func @GatherAxisOutOfRange(%p: tensor<4x3xf32>, %i: tensor<2xi32>) -> tensor<2x3xf32> {
  %0 = nn.gather %p, %i {axis = 2 : i32, batch_dims = 0 : i32} : (tensor<4x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
// CHECK: 'nn.gather' op axis 2 is out of range for rank 2 (expected -2 <= axis < 2)

// -----

func.func @GatherBatchDimsBeyondAxis(%p: tensor<2x3xf32>, %i: tensor<2x2xi32>) -> tensor<2x2xf32> {
  %0 = nn.gather %p, %i {axis = 0 : i32, batch_dims = 1 : i32} : (tensor<2x3xf32>, tensor<2x2xi32>) -> tensor<2x2xf32>
  func.return %0 : tensor<2x2xf32>
}
// CHECK: 'nn.gather' op batch_dims 1 must satisfy 0 <= batch_dims <= axis (0) and batch_dims <= the indices' rank (2)

// -----

func.func @GatherFloatIndices(%p: tensor<4x3xf32>, %i: tensor<2xf32>) -> tensor<2x3xf32> {
  %0 = nn.gather %p, %i {axis = 0 : i32, batch_dims = 0 : i32} : (tensor<4x3xf32>, tensor<2xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
// CHECK: 'nn.gather' op indices must be int16, int32 or int64, got f32

// -----

func.func @SqueezeDimOutOfRange(%a: tensor<1x3xf32>) -> tensor<3xf32> {
  %0 = nn.squeeze %a {squeeze_dims = array<i64: 2>} : (tensor<1x3xf32>) -> tensor<3xf32>
  func.return %0 : tensor<3xf32>
}
// CHECK: 'nn.squeeze' op squeeze dim 2 is out of range for rank 2 (expected -2 <= squeeze dim < 2)

// -----

func.func @TransposePermOutOfRange(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = nn.transpose %a {perm = array<i64: 1, 5>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return %0 : tensor<3x2xf32>
}
// CHECK: 'nn.transpose' op perm must be a permutation of the input dimensions

// -----

func.func @TransposePermTooShort(%a: tensor<2x3x4xf32>) -> tensor<3x2xf32> {
  %0 = nn.transpose %a {perm = array<i64: 1, 0>} : (tensor<2x3x4xf32>) -> tensor<3x2xf32>
  func.return %0 : tensor<3x2xf32>
}
// CHECK: 'nn.transpose' op perm must be a permutation of the input dimensions

// -----

func.func @ResizeToZeroSize(%a: tensor<1x4x4x3xf32>) -> tensor<1x0x8x3xf32> {
  %0 = nn.resize_nearest_neighbor %a {align_corners = false, half_pixel_centers = false} : (tensor<1x4x4x3xf32>) -> tensor<1x0x8x3xf32>
  func.return %0 : tensor<1x0x8x3xf32>
}
// CHECK: 'nn.resize_nearest_neighbor' op result height and width must be >= 1, got [0, 8]

// -----

func.func @DepthToSpaceZeroBlock(%a: tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32> {
  %0 = nn.depth_to_space %a {block_size = 0 : i32} : (tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  func.return %0 : tensor<1x4x4x8xf32>
}
// CHECK: 'nn.depth_to_space' op expects a rank-4 input and a positive block size

// -----

func.func @SpaceToDepthBlockDoesNotDivide(%a: tensor<1x5x4x2xf32>) -> tensor<1x2x2x8xf32> {
  %0 = nn.space_to_depth %a {block_size = 2 : i32} : (tensor<1x5x4x2xf32>) -> tensor<1x2x2x8xf32>
  func.return %0 : tensor<1x2x2x8xf32>
}
// CHECK: 'nn.space_to_depth' op block size 2 does not divide the input shape [1, 5, 4, 2]

// -----

func.func @FullyConnectedZeroInputFeatures(%a: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<2x0xf32>} : tensor<2x0xf32>
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x4xf32>, tensor<2x0xf32>) -> tensor<1x2xf32>
  func.return %0 : tensor<1x2xf32>
}
// CHECK: 'nn.fully_connected' op weights must have non-zero static dimensions, got [2, 0]

// -----

func.func @BatchMatMulRankSix(%a: tensor<1x1x1x1x2x3xf32>, %b: tensor<3x2xf32>) -> tensor<1x1x1x1x2x2xf32> {
  %0 = nn.batch_matmul %a, %b {adj_x = false, adj_y = false} : (tensor<1x1x1x1x2x3xf32>, tensor<3x2xf32>) -> tensor<1x1x1x1x2x2xf32>
  func.return %0 : tensor<1x1x1x1x2x2xf32>
}
// CHECK: 'nn.batch_matmul' op operands must have rank 2 to 5

// -----

func.func @ConstantValueTypeMismatch() -> tensor<2xf32> {
  %0 = nn.constant {value = dense<1> : tensor<2xi32>} : tensor<2xf32>
  func.return %0 : tensor<2xf32>
}
// CHECK: 'nn.constant' op value element type i32 does not match the result's f32

// -----

func.func @PerAxisDimensionBeyondRank(%a: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %w = nn.constant {value = dense<1> : tensor<2x4xi8>} : tensor<2x4x!quant.uniform<i8<-127:127>:f32:2, {1.0, 1.0}>>
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x4xf32>, tensor<2x4x!quant.uniform<i8<-127:127>:f32:2, {1.0, 1.0}>>) -> tensor<1x2xf32>
  func.return %0 : tensor<1x2xf32>
}
// CHECK: 'nn.constant' op result #0: quantized dimension 2 must be less than tensor rank 2

// -----

func.func @PerAxisScaleCountMismatch(%a: tensor<1x4xf32>) -> tensor<1x2xf32> {
  %w = nn.constant {value = dense<1> : tensor<2x4xi8>} : tensor<2x4x!quant.uniform<i8<-127:127>:f32:0, {1.0, 1.0, 1.0}>>
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x4xf32>, tensor<2x4x!quant.uniform<i8<-127:127>:f32:0, {1.0, 1.0, 1.0}>>) -> tensor<1x2xf32>
  func.return %0 : tensor<1x2xf32>
}
// CHECK: 'nn.constant' op result #0: quantized dimension size 2 does not match number of scales 3

// -----

// Quantization: the traits declared on each op (nn.KERNEL_PRECONDITIONS) verify its types.

func.func @LogisticNotFixedOutputRange(%a: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.5:3>> {
  %0 = nn.logistic %a : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.5:3>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.5:3>>
}
// CHECK: 'nn.logistic' op int8 result must have scale 0.00390625 and zero point -128 (fixed output range), got scale 0.5, zero point 3

// -----

func.func @TanhNotFixedOutputRange(%a: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.0078125:1>> {
  %0 = nn.tanh %a : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.0078125:1>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.0078125:1>>
}
// CHECK: 'nn.tanh' op int8 result must have scale 0.0078125 and zero point 0 (fixed output range), got scale 0.0078125, zero point 1

// -----

func.func @SoftmaxScaleBeyondTolerance(%a: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.0039105:-128>> {
  %0 = nn.softmax %a {beta = 1.0 : f32} : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.0039105:-128>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.0039105:-128>>
}
// CHECK: 'nn.softmax' op int8 result must have scale 0.00390625 (within 0.001 relative) and zero point -128 (fixed output range), got scale 0.0039105, zero point -128

// -----

func.func @MaximumDifferentScales(%a: tensor<4x!quant.uniform<i8:f32, 0.1>>, %b: tensor<4x!quant.uniform<i8:f32, 0.2>>) -> tensor<4x!quant.uniform<i8:f32, 0.2>> {
  %0 = nn.maximum %a, %b : (tensor<4x!quant.uniform<i8:f32, 0.1>>, tensor<4x!quant.uniform<i8:f32, 0.2>>) -> tensor<4x!quant.uniform<i8:f32, 0.2>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.2>>
}
// CHECK: 'nn.maximum' op operand #0 (scale 0.1, zero point 0) and result #0 (scale 0.2, zero point 0) must have the same scale and zero point

// -----

func.func @ConcatenationDifferentZeroPoints(%a: tensor<1x2x!quant.uniform<i8:f32, 0.1:3>>, %b: tensor<1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x4x!quant.uniform<i8:f32, 0.1:3>> {
  %0 = nn.concatenation %a, %b {axis = 1 : i32, fused_activation = "NONE"} : (tensor<1x2x!quant.uniform<i8:f32, 0.1:3>>, tensor<1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x4x!quant.uniform<i8:f32, 0.1:3>>
  func.return %0 : tensor<1x4x!quant.uniform<i8:f32, 0.1:3>>
}
// CHECK: 'nn.concatenation' op operand #1 (scale 0.1, zero point 0) and result #0 (scale 0.1, zero point 3) must have the same scale and zero point

// -----

func.func @PadValueWithOtherScale(%a: tensor<2x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {
  %v = nn.constant {value = dense<3> : tensor<1xi8>} : tensor<1x!quant.uniform<i8:f32, 0.5>>
  %0 = nn.pad %a, %v {paddings = array<i64: 1, 1>} : (tensor<2x!quant.uniform<i8:f32, 0.1>>, tensor<1x!quant.uniform<i8:f32, 0.5>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.1>>
}
// CHECK: 'nn.pad' op operand #1 (scale 0.5, zero point 0) and result #0 (scale 0.1, zero point 0) must have the same scale and zero point

// -----

func.func @HardSwishOutputScaleTooFine(%a: tensor<4x!quant.uniform<i8:f32, 31.0:127>>) -> tensor<4x!quant.uniform<i8:f32, 0.0074:-78>> {
  %0 = nn.hard_swish %a : (tensor<4x!quant.uniform<i8:f32, 31.0:127>>) -> tensor<4x!quant.uniform<i8:f32, 0.0074:-78>> loc("hswish")
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.0074:-78>>
}
// CHECK: 'nn.hard_swish' op output multiplier input scale / 128 / output scale must be < 1 after rounding (TFLite HARD_SWISH output_multiplier_exponent <= 0), got 31 / 128 / 0.0074 = 32.72804

// -----

func.func @AddOutputMultiplierNotBelowOne(%a: tensor<4x!quant.uniform<i8:f32, 9.765625e-04>>) -> tensor<4x!quant.uniform<i8:f32, 1.862645149230957E-9>> {
  %0 = nn.add %a, %a {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 9.765625e-04>>, tensor<4x!quant.uniform<i8:f32, 9.765625e-04>>) -> tensor<4x!quant.uniform<i8:f32, 1.862645149230957E-9>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 1.862645149230957E-9>>
}
// CHECK: 'nn.add' op output multiplier 2 x max(input scales) / (2^20 x output scale) must be in (0, 1) after rounding (TFLite ADD QuantizeMultiplierSmallerThanOneExp), got 0.001953125 / (2^20 x 1.862645e-09) = 1

// -----

func.func @SubOutputMultiplierExactlyOne(%a: tensor<4x!quant.uniform<i8:f32, 9.765625e-04>>) -> tensor<4x!quant.uniform<i8:f32, 1.862645149230957E-9>> {
  %0 = nn.sub %a, %a {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 9.765625e-04>>, tensor<4x!quant.uniform<i8:f32, 9.765625e-04>>) -> tensor<4x!quant.uniform<i8:f32, 1.862645149230957E-9>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 1.862645149230957E-9>>
}
// CHECK: 'nn.sub' op output multiplier 2 x max(input scales) / (2^20 x output scale) must be in (0, 1) after rounding (TFLite SUB QuantizeMultiplierSmallerThanOneExp), got 0.001953125 / (2^20 x 1.862645e-09) = 1

// -----

func.func @AddOutputScaleOverflowsKernel(%a: tensor<4x!quant.uniform<i8:f32, 1.0>>) -> tensor<4x!quant.uniform<i8:f32, 1.0e36>> {
  %0 = nn.add %a, %a {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 1.0>>, tensor<4x!quant.uniform<i8:f32, 1.0>>) -> tensor<4x!quant.uniform<i8:f32, 1.0e36>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 1.0e36>>
}
// CHECK: 'nn.add' op 2^20 x output scale 1e+36 overflows float32 (TFLite ADD QuantizeMultiplierSmallerThanOneExp): the output range is too wide

// -----

func.func @MulOutputMultiplierOverflows(%a: tensor<4x!quant.uniform<i8:f32, 1.0e30>>) -> tensor<4x!quant.uniform<i8:f32, 1.0>> {
  %0 = nn.mul %a, %a {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 1.0e30>>, tensor<4x!quant.uniform<i8:f32, 1.0e30>>) -> tensor<4x!quant.uniform<i8:f32, 1.0>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 1.0>>
}
// CHECK: 'nn.mul' op output multiplier lhs scale x rhs scale / output scale overflows float32 (TFLite MUL QuantizeMultiplier): 1e+30 x 1e+30 / 1

// -----

func.func @ConvRelu6BoundBeyondInt32(%a: tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 1.0e-10>> {
  %w = nn.constant {value = dense<1> : tensor<2x1x1x2xi8>} : tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.01}>>
  %b = nn.constant {value = dense<0> : tensor<2xi32>} : tensor<2x!quant.uniform<i32:f32:0, {0.001, 0.001}>>
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "RELU6"} : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>, tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.01}>>, tensor<2x!quant.uniform<i32:f32:0, {0.001, 0.001}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 1.0e-10>>
  func.return %0 : tensor<1x1x1x2x!quant.uniform<i8:f32, 1.0e-10>>
}
// CHECK: 'nn.conv2d' op fused_activation RELU6: bound 6 / output scale 1e-10 does not fit int32

// -----

func.func @ConvFusedTanhInInt8(%a: tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>> {
  %w = nn.constant {value = dense<1> : tensor<2x1x1x2xi8>} : tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.01}>>
  %0 = nn.conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "TANH"} : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>, tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.01}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
}
// CHECK: 'nn.conv2d' op fused_activation TANH is not applied by TFLite's int8 kernels

// -----

func.func @ConvWeightsNotSymmetric(%a: tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>> {
  %w = nn.constant {value = dense<1> : tensor<2x1x1x2xi8>} : tensor<2x1x1x2x!quant.uniform<i8:f32, 0.01:5>>
  %0 = nn.conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>, tensor<2x1x1x2x!quant.uniform<i8:f32, 0.01:5>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
}
// CHECK: 'nn.conv2d' op weights (operand #1) must be quantized symmetrically (zero point 0)

// -----

func.func @DepthwiseWeightsOnWrongAxis(%a: tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>> {
  %w = nn.constant {value = dense<1> : tensor<1x1x1x2xi8>} : tensor<1x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01}>>
  %0 = nn.depthwise_conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE", depth_multiplier = 1 : i32} : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>, tensor<1x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
}
// CHECK: 'nn.depthwise_conv2d' op weights (operand #1) must be quantized per axis along dimension 3, got dimension 0

// -----

func.func @ConvBiasNotInt32(%a: tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>> {
  %w = nn.constant {value = dense<1> : tensor<2x1x1x2xi8>} : tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.01}>>
  %b = nn.constant {value = dense<0> : tensor<2xi16>} : tensor<2x!quant.uniform<i16:f32:0, {0.001, 0.001}>>
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>, tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.01}>>, tensor<2x!quant.uniform<i16:f32:0, {0.001, 0.001}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
}
// CHECK: 'nn.conv2d' op bias (operand #2) must be int32 with int8 activations, got 16 bits

// -----

func.func @ConvBiasScaleNotInputTimesWeight(%a: tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>> {
  %w = nn.constant {value = dense<1> : tensor<2x1x1x2xi8>} : tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.02}>>
  %b = nn.constant {value = dense<0> : tensor<2xi32>} : tensor<2x!quant.uniform<i32:f32:0, {0.001, 0.001}>>
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>, tensor<2x1x1x2x!quant.uniform<i8<-127:127>:f32:0, {0.01, 0.02}>>, tensor<2x!quant.uniform<i32:f32:0, {0.001, 0.001}>>) -> tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<1x1x1x2x!quant.uniform<i8:f32, 0.1>>
}
// CHECK: 'nn.conv2d' op bias (operand #2) scale [1] must be input scale x weight scale = 0.002, got 0.001

// -----

// The bias scale is input x weight scale up to 1e-7 relative, but LiteRT's per-tensor
// FULLY_CONNECTED measures the difference against the (here tiny) output scale.
func.func @FullyConnectedPerTensorBiasScaleFarFromOutputScale(%a: tensor<1x2x!quant.uniform<i8:f32, 0.1>>) -> tensor<1x2x!quant.uniform<i8:f32, 1.0e-9>> {
  %w = nn.constant {value = dense<1> : tensor<2x2xi8>} : tensor<2x2x!quant.uniform<i8<-127:127>:f32, 0.01>>
  %b = nn.constant {value = dense<0> : tensor<2xi32>} : tensor<2x!quant.uniform<i32:f32, 0.0010000001>>
  %0 = nn.fully_connected %a, %w, %b {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x2x!quant.uniform<i8:f32, 0.1>>, tensor<2x2x!quant.uniform<i8<-127:127>:f32, 0.01>>, tensor<2x!quant.uniform<i32:f32, 0.0010000001>>) -> tensor<1x2x!quant.uniform<i8:f32, 1.0e-9>>
  func.return %0 : tensor<1x2x!quant.uniform<i8:f32, 1.0e-9>>
}
// CHECK: 'nn.fully_connected' op |input scale x weight scale - bias scale| / output scale must be <= 0.02 (TFLite per-tensor FULLY_CONNECTED), got 0.05495

// -----

// TFLite's kernel writes nothing for a shrunk axis walked backwards.
func.func @StridedSliceShrinkNegativeStride(%x: tensor<3xf32>) -> tensor<f32> {
  %0 = nn.strided_slice %x {begin = array<i64: 1>, end = array<i64: 0>, strides = array<i64: -1>, begin_mask = 0 : i32, end_mask = 0 : i32, ellipsis_mask = 0 : i32, new_axis_mask = 0 : i32, shrink_axis_mask = 1 : i32, offset = false} : (tensor<3xf32>) -> tensor<f32>
  func.return %0 : tensor<f32>
}
// CHECK: 'nn.strided_slice' op index 0 is shrunk with a negative stride
