// RUN: qcc %s --split-input-file | filecheck %s
// RUN: qcc %s --split-input-file | qcc - --split-input-file | filecheck %s
// Every nn op prints in its custom form and parses back to the same text.

// CHECK-LABEL: func.func @Conv2D
// CHECK-NEXT:    %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
// CHECK-NEXT:    %b = nn.constant {value = dense<5.000000e-01> : tensor<8xf32>} : tensor<8xf32>
// CHECK-NEXT:    %0 = nn.conv2d %a, %w, %b {stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "RELU6"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<1x4x4x8xf32>
func.func @Conv2D(%a: tensor<1x8x8x3xf32>) -> tensor<1x4x4x8xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<8x3x3x3xf32>} : tensor<8x3x3x3xf32>
  %b = nn.constant {value = dense<5.000000e-01> : tensor<8xf32>} : tensor<8xf32>
  %0 = nn.conv2d %a, %w, %b {stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "RELU6"} : (tensor<1x8x8x3xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<1x4x4x8xf32>
  func.return %0 : tensor<1x4x4x8xf32>
}

// -----

// CHECK-LABEL: func.func @DepthwiseConv2D
// CHECK-NEXT:    %w = nn.constant {value = dense<1.000000e+00> : tensor<1x3x3x6xf32>} : tensor<1x3x3x6xf32>
// CHECK-NEXT:    %0 = nn.depthwise_conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE", depth_multiplier = 2 : i32} : (tensor<1x8x8x3xf32>, tensor<1x3x3x6xf32>) -> tensor<1x6x6x6xf32>
func.func @DepthwiseConv2D(%a: tensor<1x8x8x3xf32>) -> tensor<1x6x6x6xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<1x3x3x6xf32>} : tensor<1x3x3x6xf32>
  %0 = nn.depthwise_conv2d %a, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE", depth_multiplier = 2 : i32} : (tensor<1x8x8x3xf32>, tensor<1x3x3x6xf32>) -> tensor<1x6x6x6xf32>
  func.return %0 : tensor<1x6x6x6xf32>
}

// -----

// CHECK-LABEL: func.func @TransposeConv
// CHECK-NEXT:    %w = nn.constant {value = dense<1.000000e+00> : tensor<4x3x3x3xf32>} : tensor<4x3x3x3xf32>
// CHECK-NEXT:    %0 = nn.transpose_conv %a, %w {stride = array<i64: 2, 2>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x16x16x4xf32>
func.func @TransposeConv(%a: tensor<1x8x8x3xf32>) -> tensor<1x16x16x4xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<4x3x3x3xf32>} : tensor<4x3x3x3xf32>
  %0 = nn.transpose_conv %a, %w {stride = array<i64: 2, 2>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x16x16x4xf32>
  func.return %0 : tensor<1x16x16x4xf32>
}

// -----

// CHECK-LABEL: func.func @FullyConnected
// CHECK-NEXT:    %w = nn.constant {value = dense<1.000000e+00> : tensor<5x12xf32>} : tensor<5x12xf32>
// CHECK-NEXT:    %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x2x2x3xf32>, tensor<5x12xf32>) -> tensor<1x5xf32>
func.func @FullyConnected(%a: tensor<1x2x2x3xf32>) -> tensor<1x5xf32> {
  %w = nn.constant {value = dense<1.000000e+00> : tensor<5x12xf32>} : tensor<5x12xf32>
  %0 = nn.fully_connected %a, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x2x2x3xf32>, tensor<5x12xf32>) -> tensor<1x5xf32>
  func.return %0 : tensor<1x5xf32>
}

// -----

// CHECK-LABEL: func.func @BatchMatMul
// CHECK-NEXT:    %0 = nn.batch_matmul %a, %a {adj_x = false, adj_y = true} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x3xf32>
func.func @BatchMatMul(%a: tensor<2x3x4xf32>) -> tensor<2x3x3xf32> {
  %0 = nn.batch_matmul %a, %a {adj_x = false, adj_y = true} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x3xf32>
  func.return %0 : tensor<2x3x3xf32>
}

// -----

// CHECK-LABEL: func.func @AddBroadcast
// CHECK-NEXT:    %c = nn.constant {value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>} : tensor<3xf32>
// CHECK-NEXT:    %0 = nn.add %a, %c {fused_activation = "RELU"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
func.func @AddBroadcast(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %c = nn.constant {value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>} : tensor<3xf32>
  %0 = nn.add %a, %c {fused_activation = "RELU"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @Maximum
// CHECK-NEXT:    %0 = nn.maximum %a, %a : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
func.func @Maximum(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.maximum %a, %a : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @PRelu
// CHECK-NEXT:    %s = nn.constant {value = dense<2.500000e-01> : tensor<1x1x3xf32>} : tensor<1x1x3xf32>
// CHECK-NEXT:    %0 = nn.prelu %a, %s : (tensor<1x4x4x3xf32>, tensor<1x1x3xf32>) -> tensor<1x4x4x3xf32>
func.func @PRelu(%a: tensor<1x4x4x3xf32>) -> tensor<1x4x4x3xf32> {
  %s = nn.constant {value = dense<2.500000e-01> : tensor<1x1x3xf32>} : tensor<1x1x3xf32>
  %0 = nn.prelu %a, %s : (tensor<1x4x4x3xf32>, tensor<1x1x3xf32>) -> tensor<1x4x4x3xf32>
  func.return %0 : tensor<1x4x4x3xf32>
}

// -----

// CHECK-LABEL: func.func @LeakyRelu
// CHECK-NEXT:    %0 = nn.leaky_relu %a {alpha = 2.000000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
func.func @LeakyRelu(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.leaky_relu %a {alpha = 2.000000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @Softmax
// CHECK-NEXT:    %0 = nn.softmax %a {beta = 1.000000e+00 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
func.func @Softmax(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.softmax %a {beta = 1.000000e+00 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @PadV2
// CHECK-NEXT:    %v = nn.constant {value = dense<-1.000000e+00> : tensor<f32>} : tensor<f32>
// CHECK-NEXT:    %0 = nn.pad %a, %v {paddings = array<i64: 0, 0, 1, 2, 1, 2, 0, 0>} : (tensor<1x4x4x3xf32>, tensor<f32>) -> tensor<1x7x7x3xf32>
func.func @PadV2(%a: tensor<1x4x4x3xf32>) -> tensor<1x7x7x3xf32> {
  %v = nn.constant {value = dense<-1.000000e+00> : tensor<f32>} : tensor<f32>
  %0 = nn.pad %a, %v {paddings = array<i64: 0, 0, 1, 2, 1, 2, 0, 0>} : (tensor<1x4x4x3xf32>, tensor<f32>) -> tensor<1x7x7x3xf32>
  func.return %0 : tensor<1x7x7x3xf32>
}

// -----

// CHECK-LABEL: func.func @AvgPool
// CHECK-NEXT:    %0 = nn.avg_pool2d %a {filter_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x4x4x3xf32>) -> tensor<1x2x2x3xf32>
func.func @AvgPool(%a: tensor<1x4x4x3xf32>) -> tensor<1x2x2x3xf32> {
  %0 = nn.avg_pool2d %a {filter_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x4x4x3xf32>) -> tensor<1x2x2x3xf32>
  func.return %0 : tensor<1x2x2x3xf32>
}

// -----

// CHECK-LABEL: func.func @Mean
// CHECK-NEXT:    %0 = nn.mean %a {axes = array<i64: 1, 2>, keep_dims = true} : (tensor<1x4x4x3xf32>) -> tensor<1x1x1x3xf32>
func.func @Mean(%a: tensor<1x4x4x3xf32>) -> tensor<1x1x1x3xf32> {
  %0 = nn.mean %a {axes = array<i64: 1, 2>, keep_dims = true} : (tensor<1x4x4x3xf32>) -> tensor<1x1x1x3xf32>
  func.return %0 : tensor<1x1x1x3xf32>
}

// -----

// CHECK-LABEL: func.func @ReshapeTranspose
// CHECK-NEXT:    %0 = nn.reshape %a : (tensor<1x4x4x3xf32>) -> tensor<16x3xf32>
// CHECK-NEXT:    %1 = nn.transpose %0 {perm = array<i64: 1, 0>} : (tensor<16x3xf32>) -> tensor<3x16xf32>
func.func @ReshapeTranspose(%a: tensor<1x4x4x3xf32>) -> tensor<3x16xf32> {
  %0 = nn.reshape %a : (tensor<1x4x4x3xf32>) -> tensor<16x3xf32>
  %1 = nn.transpose %0 {perm = array<i64: 1, 0>} : (tensor<16x3xf32>) -> tensor<3x16xf32>
  func.return %1 : tensor<3x16xf32>
}

// -----

// CHECK-LABEL: func.func @Concatenation
// CHECK-NEXT:    %0 = nn.concatenation %a, %a {axis = 3 : i32, fused_activation = "NONE"} : (tensor<1x4x4x3xf32>, tensor<1x4x4x3xf32>) -> tensor<1x4x4x6xf32>
func.func @Concatenation(%a: tensor<1x4x4x3xf32>) -> tensor<1x4x4x6xf32> {
  %0 = nn.concatenation %a, %a {axis = 3 : i32, fused_activation = "NONE"} : (tensor<1x4x4x3xf32>, tensor<1x4x4x3xf32>) -> tensor<1x4x4x6xf32>
  func.return %0 : tensor<1x4x4x6xf32>
}

// -----

// CHECK-LABEL: func.func @Split
// CHECK-NEXT:    %0, %1 = nn.split %a {axis = 3 : i32} : (tensor<1x4x4x4xf32>) -> (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>)
func.func @Split(%a: tensor<1x4x4x4xf32>) -> tensor<1x4x4x2xf32> {
  %0, %1 = nn.split %a {axis = 3 : i32} : (tensor<1x4x4x4xf32>) -> (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>)
  func.return %0 : tensor<1x4x4x2xf32>
}

// -----

// CHECK-LABEL: func.func @StridedSlice
// CHECK-NEXT:    %0 = nn.strided_slice %a {begin = array<i64: 0, 1>, end = array<i64: 0, 4>, strides = array<i64: 1, 2>, begin_mask = 1 : i32, end_mask = 1 : i32, ellipsis_mask = 0 : i32, new_axis_mask = 0 : i32, shrink_axis_mask = 0 : i32, offset = false} : (tensor<2x4xf32>) -> tensor<2x2xf32>
func.func @StridedSlice(%a: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %0 = nn.strided_slice %a {begin = array<i64: 0, 1>, end = array<i64: 0, 4>, strides = array<i64: 1, 2>, begin_mask = 1 : i32, end_mask = 1 : i32, ellipsis_mask = 0 : i32, new_axis_mask = 0 : i32, shrink_axis_mask = 0 : i32, offset = false} : (tensor<2x4xf32>) -> tensor<2x2xf32>
  func.return %0 : tensor<2x2xf32>
}

// -----

// CHECK-LABEL: func.func @Gather
// CHECK-NEXT:    %i = nn.constant {value = dense<[2, 0]> : tensor<2xi32>} : tensor<2xi32>
// CHECK-NEXT:    %0 = nn.gather %a, %i {axis = 1 : i32, batch_dims = 0 : i32} : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<2x2xf32>
func.func @Gather(%a: tensor<2x4xf32>) -> tensor<2x2xf32> {
  %i = nn.constant {value = dense<[2, 0]> : tensor<2xi32>} : tensor<2xi32>
  %0 = nn.gather %a, %i {axis = 1 : i32, batch_dims = 0 : i32} : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<2x2xf32>
  func.return %0 : tensor<2x2xf32>
}

// -----

// CHECK-LABEL: func.func @ResizeBilinear
// CHECK-NEXT:    %0 = nn.resize_bilinear %a {align_corners = false, half_pixel_centers = true} : (tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32>
func.func @ResizeBilinear(%a: tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32> {
  %0 = nn.resize_bilinear %a {align_corners = false, half_pixel_centers = true} : (tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32>
  func.return %0 : tensor<1x8x8x3xf32>
}

// -----

// CHECK-LABEL: func.func @DepthToSpace
// CHECK-NEXT:    %0 = nn.depth_to_space %a {block_size = 2 : i32} : (tensor<1x4x4x8xf32>) -> tensor<1x8x8x2xf32>
func.func @DepthToSpace(%a: tensor<1x4x4x8xf32>) -> tensor<1x8x8x2xf32> {
  %0 = nn.depth_to_space %a {block_size = 2 : i32} : (tensor<1x4x4x8xf32>) -> tensor<1x8x8x2xf32>
  func.return %0 : tensor<1x8x8x2xf32>
}

// -----

// CHECK-LABEL: func.func @GenericCustomOp
// CHECK-NEXT:    %0 = nn.generic %a {op_name = "Convolution2DTransposeBias", custom = true, options = "0x0102FF"} : (tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32>
func.func @GenericCustomOp(%a: tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32> {
  %0 = nn.generic %a {op_name = "Convolution2DTransposeBias", custom = true, options = "0x0102FF"} : (tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32>
  func.return %0 : tensor<1x8x8x3xf32>
}

// -----

// Axes and permutation entries may count from the end, as in TFLite.
// CHECK-LABEL: func.func @NegativeAxes
// CHECK-NEXT:    %0 = nn.mean %a {axes = array<i64: -1, 1>, keep_dims = true} : (tensor<2x3x4xf32>) -> tensor<2x1x1xf32>
// CHECK-NEXT:    %1 = nn.transpose %a {perm = array<i64: -1, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
// CHECK-NEXT:    %2 = nn.concatenation %a, %a {axis = -3 : i32, fused_activation = "NONE"} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<4x3x4xf32>
func.func @NegativeAxes(%a: tensor<2x3x4xf32>) -> tensor<4x3x4xf32> {
  %0 = nn.mean %a {axes = array<i64: -1, 1>, keep_dims = true} : (tensor<2x3x4xf32>) -> tensor<2x1x1xf32>
  %1 = nn.transpose %a {perm = array<i64: -1, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %2 = nn.concatenation %a, %a {axis = -3 : i32, fused_activation = "NONE"} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<4x3x4xf32>
  func.return %2 : tensor<4x3x4xf32>
}

// -----

// Quantized types that keep every trait: the fixed logistic range, a shared scale, a
// HARD_SWISH output scale just above input_scale / 128.
// CHECK-LABEL: func.func @QuantizedOpsKeepTheirTraits
// CHECK-NEXT:    %0 = nn.logistic %a : (tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>>
// CHECK-NEXT:    %1 = nn.maximum %a, %a : (tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK-NEXT:    %2 = nn.hard_swish %a : (tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 7.813000e-04:-100>>
func.func @QuantizedOpsKeepTheirTraits(%a: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {
  %0 = nn.logistic %a : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.00390625:-128>>
  %1 = nn.maximum %a, %a : (tensor<4x!quant.uniform<i8:f32, 0.1>>, tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>>
  %2 = nn.hard_swish %a : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.0007813:-100>>
  func.return %1 : tensor<4x!quant.uniform<i8:f32, 0.1>>
}
