// RUN: qcc %s --split-input-file --pass-pipeline='builtin.module(fuse-activation)' | filecheck %s

// CHECK-LABEL: func.func @FuseReluIntoConv
// CHECK-NEXT:    %[[W:.*]] = nn.constant
// CHECK-NEXT:    %[[C:.*]] = nn.conv2d %arg0, %[[W]] {{{.*}}fused_activation = "RELU"{{.*}}} : {{.*}} loc("relu")
// CHECK-NEXT:    func.return %[[C]]
func.func @FuseReluIntoConv(%arg0: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = nn.constant {value = dense<1.0> : tensor<3x1x1x2xf32>} : tensor<3x1x1x2xf32>
  %0 = nn.conv2d %arg0, %w {stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>, padding = "VALID", fused_activation = "NONE"} : (tensor<1x4x4x2xf32>, tensor<3x1x1x2xf32>) -> tensor<1x4x4x3xf32> loc("conv")
  %1 = nn.relu %0 : (tensor<1x4x4x3xf32>) -> tensor<1x4x4x3xf32> loc("relu")
  func.return %1 : tensor<1x4x4x3xf32>
}

// -----

// CHECK-LABEL: func.func @FuseRelu6IntoAdd
// CHECK-NEXT:    %[[A:.*]] = nn.add %arg0, %arg0 {fused_activation = "RELU6"}
// CHECK-NEXT:    func.return %[[A]]
func.func @FuseRelu6IntoAdd(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.add %arg0, %arg0 {fused_activation = "NONE"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = nn.relu6 %0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %1 : tensor<2x3xf32>
}

// -----

// A producer with a second user keeps its own output: nothing is fused.
// CHECK-LABEL: func.func @NoFusionWhenProducerHasTwoUsers
// CHECK-NEXT:    %[[A:.*]] = nn.add %arg0, %arg0 {fused_activation = "NONE"}
// CHECK-NEXT:    %[[R:.*]] = nn.relu %[[A]]
// CHECK-NEXT:    %[[S:.*]] = nn.sub %[[R]], %[[A]]
func.func @NoFusionWhenProducerHasTwoUsers(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.add %arg0, %arg0 {fused_activation = "NONE"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = nn.relu %0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = nn.sub %1, %0 {fused_activation = "NONE"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %2 : tensor<2x3xf32>
}

// -----

// An op that already has an activation is left alone.
// CHECK-LABEL: func.func @NoFusionOverExistingActivation
// CHECK-NEXT:    %[[A:.*]] = nn.add %arg0, %arg0 {fused_activation = "RELU6"}
// CHECK-NEXT:    %[[R:.*]] = nn.relu %[[A]]
func.func @NoFusionOverExistingActivation(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.add %arg0, %arg0 {fused_activation = "RELU6"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = nn.relu %0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %1 : tensor<2x3xf32>
}

// -----

// Ops without a fused activation (logistic) are not producers for fusion.
// CHECK-LABEL: func.func @NoFusionIntoLogistic
// CHECK-NEXT:    %[[L:.*]] = nn.logistic %arg0
// CHECK-NEXT:    %[[R:.*]] = nn.relu %[[L]]
func.func @NoFusionIntoLogistic(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = nn.logistic %arg0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = nn.relu %0 : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %1 : tensor<2x3xf32>
}

// -----

// LiteRT cannot prepare an int8 CONCATENATION with a fused activation: never fuse into one.
// CHECK-LABEL: func.func @NoFusionIntoConcatenation
// CHECK-NEXT:    %[[C:.*]] = nn.concatenation %arg0, %arg0 {axis = 1 : i32, fused_activation = "NONE"}
// CHECK-NEXT:    %[[R:.*]] = nn.relu %[[C]]
func.func @NoFusionIntoConcatenation(%arg0: tensor<2x3xf32>) -> tensor<2x6xf32> {
  %0 = nn.concatenation %arg0, %arg0 {axis = 1 : i32, fused_activation = "NONE"} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x6xf32>
  %1 = nn.relu %0 : (tensor<2x6xf32>) -> tensor<2x6xf32>
  func.return %1 : tensor<2x6xf32>
}
