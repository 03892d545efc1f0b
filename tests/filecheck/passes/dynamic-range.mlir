// RUN: qcc %s --split-input-file --pass-pipeline='dynamic-range' | filecheck %s
// RUN: qcc %s --split-input-file --pass-pipeline='dynamic-range{min-elements=0}' | filecheck %s --check-prefix=ALL

// Conv weights (16x3x3x8 = 1152 elements) become int8 per output channel (axis 0); the bias
// and the activations stay float.
// CHECK-LABEL: func.func @QuantizeConvWeightsPerAxis0
// CHECK:         %[[W:.*]] = nn.constant {value = dense<127> : tensor<16x3x3x8xi8>} : tensor<16x3x3x8x!quant.uniform<i8<-127:127>:f32:0, {0.0078740157186985016,{{.*}}}>> loc("w")
// CHECK-NEXT:    nn.conv2d %arg0, %[[W]], %{{.*}} {{.*}} : (tensor<1x4x4x8xf32>, tensor<16x3x3x8x!quant.uniform<i8<-127:127>:f32:0, {{.*}}>>, tensor<16xf32>) -> tensor<1x4x4x16xf32>
func.func @QuantizeConvWeightsPerAxis0(%arg0: tensor<1x4x4x8xf32>) -> tensor<1x4x4x16xf32> {
  %w = nn.constant {value = dense<1.0> : tensor<16x3x3x8xf32>} : tensor<16x3x3x8xf32> loc("w")
  %b = nn.constant {value = dense<0.5> : tensor<16xf32>} : tensor<16xf32> loc("b")
  %0 = nn.conv2d %arg0, %w, %b {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x4x4x8xf32>, tensor<16x3x3x8xf32>, tensor<16xf32>) -> tensor<1x4x4x16xf32>
  func.return %0 : tensor<1x4x4x16xf32>
}

// -----

// Depthwise weights 1x3x3x128 (1152 elements) are quantized per axis 3.
// CHECK-LABEL: func.func @DepthwisePerAxis3
// CHECK:         nn.constant {value = dense<-127> : tensor<1x3x3x128xi8>} : tensor<1x3x3x128x!quant.uniform<i8<-127:127>:f32:3, {{.*}}>>
// ALL-LABEL:   func.func @DepthwisePerAxis3
// ALL:           nn.constant {{.*}} : tensor<1x3x3x128x!quant.uniform<i8<-127:127>:f32:3, {{.*}}>>
func.func @DepthwisePerAxis3(%arg0: tensor<1x4x4x128xf32>) -> tensor<1x4x4x128xf32> {
  %w = nn.constant {value = dense<-2.0> : tensor<1x3x3x128xf32>} : tensor<1x3x3x128xf32>
  %0 = nn.depthwise_conv2d %arg0, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "SAME", depth_multiplier = 1 : i64, fused_activation = "NONE"} : (tensor<1x4x4x128xf32>, tensor<1x3x3x128xf32>) -> tensor<1x4x4x128xf32>
  func.return %0 : tensor<1x4x4x128xf32>
}

// -----

// Small weights (FC 4x8, BATCH_MATMUL rhs 8x4) stay float by default; with min-elements=0 the
// FC weight is int8 per row (axis 0) and the constant BATCH_MATMUL rhs per tensor.
// CHECK-LABEL: func.func @SmallWeightsStayFloat
// CHECK-NOT:     quant.uniform
// CHECK:         func.return
// ALL-LABEL:   func.func @SmallWeightsStayFloat
// ALL-NEXT:      %[[W:.*]] = nn.constant {value = dense<127> : tensor<4x8xi8>} : tensor<4x8x!quant.uniform<i8<-127:127>:f32:0, {[[S:[0-9.]+]],[[S]],[[S]],[[S]]}>>
// ALL-NEXT:      nn.fully_connected %arg0, %[[W]] {{.*}} : (tensor<1x8xf32>, tensor<4x8x!quant.uniform
// ALL-NEXT:      %[[R:.*]] = nn.constant {value = dense<127> : tensor<8x4xi8>} : tensor<8x4x!quant.uniform<i8<-127:127>:f32, 0.0078740157186985016>>
// ALL-NEXT:      nn.batch_matmul %arg1, %[[R]] {{.*}} : (tensor<2x8xf32>, tensor<8x4x!quant.uniform
func.func @SmallWeightsStayFloat(%arg0: tensor<1x8xf32>, %arg1: tensor<2x8xf32>) -> (tensor<1x4xf32>, tensor<2x4xf32>) {
  %w = nn.constant {value = dense<3.0> : tensor<4x8xf32>} : tensor<4x8xf32>
  %0 = nn.fully_connected %arg0, %w {fused_activation = "NONE", keep_num_dims = false} : (tensor<1x8xf32>, tensor<4x8xf32>) -> tensor<1x4xf32>
  %r = nn.constant {value = dense<1.0> : tensor<8x4xf32>} : tensor<8x4xf32>
  %1 = nn.batch_matmul %arg1, %r {adj_x = false, adj_y = false} : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  func.return %0, %1 : tensor<1x4xf32>, tensor<2x4xf32>
}

// -----

// A rank-4 lhs BATCH_MATMUL stays float: LiteRT 2.3's builtin hybrid kernel is wrong there.
// ALL-LABEL:   func.func @BatchMatMulRank4StaysFloat
// ALL-NOT:       quant.uniform
// ALL:           func.return
func.func @BatchMatMulRank4StaysFloat(%arg0: tensor<2x3x8x16xf32>) -> tensor<2x3x8x12xf32> {
  %r = nn.constant {value = dense<1.0> : tensor<16x12xf32>} : tensor<16x12xf32>
  %0 = nn.batch_matmul %arg0, %r {adj_x = false, adj_y = false} : (tensor<2x3x8x16xf32>, tensor<16x12xf32>) -> tensor<2x3x8x12xf32>
  func.return %0 : tensor<2x3x8x12xf32>
}
