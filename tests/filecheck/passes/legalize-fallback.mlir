// RUN: qcc %s --split-input-file --pass-pipeline='legalize-fallback' | filecheck %s

// Two consecutive float-only ops share one island; the constant divisor goes back to f32.
// CHECK-LABEL: func.func @CustomOpBecomesFloatIsland
// CHECK-NEXT:    %[[C:.*]] = nn.constant {value = dense<{{.*}}> : tensor<4xf32>} : tensor<4xf32>
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %{{.*}} : tensor<4x!quant.uniform<i8:f32, 0.0078431377187371254:-1>> to tensor<4xf32> loc("div")
// CHECK-NEXT:    %[[V:.*]] = nn.div %[[D]], %[[C]] {fused_activation = "NONE"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("div")
// CHECK-NEXT:    %[[G:.*]] = nn.generic %[[V]] {{.*}} : (tensor<4xf32>) -> tensor<4xf32> loc("custom")
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %[[G]] : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("custom")
// CHECK-NEXT:    nn.logistic %[[Q]] : (tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-1>>) -> tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>>
func.func @CustomOpBecomesFloatIsland(%arg0: tensor<4x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>) -> tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>> {
  %c = nn.constant {value = dense<[2.0, 4.0, 0.5, 1.0]> : tensor<4xf32>} : tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-128>>
  %0 = nn.div %arg0, %c {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>, tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-128>>) -> tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("div")
  %1 = nn.generic %0 {op_name = "MyOp", custom = true} : (tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-1>>) -> tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("custom")
  %2 = nn.logistic %1 : (tensor<4x!quant.uniform<i8:f32, 0.015686275437474251:-1>>) -> tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>> loc("sig")
  func.return %2 : tensor<4x!quant.uniform<i8:f32, 3.906250e-03:-128>>
}

// -----

// Ops with an int8 kernel are left alone.
// CHECK-LABEL: func.func @Int8OpUnchanged
// CHECK-NEXT:    %[[R:.*]] = nn.relu %arg0 : (tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<4x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK-NEXT:    func.return %[[R]]
func.func @Int8OpUnchanged(%arg0: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {
  %0 = nn.relu %arg0 : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>>
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.1>>
}

// -----

// A requantization in front of a same-scale op (here the concatenation's first input, whose
// scale differs) is a qcast chain; between float ops it folds away with the island edges.
// CHECK-LABEL: func.func @RequantizedEdgeBetweenFloatOpsFolds
// CHECK-NEXT:    %[[A:.*]] = nn.div %arg0, %arg1 {{.*}} -> tensor<1x2xf32> loc("a")
// CHECK-NEXT:    %[[B:.*]] = nn.div %arg1, %arg0 {{.*}} -> tensor<1x2xf32> loc("b")
// CHECK-NEXT:    %[[C:.*]] = nn.concatenation %[[A]], %[[B]] {{.*}} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x4xf32> loc("cat")
// CHECK-NEXT:    func.return %[[C]] : tensor<1x4xf32>
func.func @RequantizedEdgeBetweenFloatOpsFolds(%arg0: tensor<1x2xf32>, %arg1: tensor<1x2xf32>) -> tensor<1x4xf32> {
  %0 = nn.div %arg0, %arg1 {fused_activation = "NONE"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32> loc("a")
  %1 = quant.qcast %0 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.0078431377187371254:-1>> loc("a")
  %2 = nn.div %arg1, %arg0 {fused_activation = "NONE"} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32> loc("b")
  %3 = quant.qcast %2 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("b")
  %4 = quant.qcast %1 : tensor<1x2x!quant.uniform<i8:f32, 0.0078431377187371254:-1>> to tensor<1x2x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("cat")
  %5 = nn.concatenation %4, %3 {axis = 1 : i64, fused_activation = "NONE", qcc.precision = "float"} : (tensor<1x2x!quant.uniform<i8:f32, 0.015686275437474251:-1>>, tensor<1x2x!quant.uniform<i8:f32, 0.015686275437474251:-1>>) -> tensor<1x4x!quant.uniform<i8:f32, 0.015686275437474251:-1>> loc("cat")
  %6 = quant.dcast %5 : tensor<1x4x!quant.uniform<i8:f32, 0.015686275437474251:-1>> to tensor<1x4xf32> loc("cat")
  func.return %6 : tensor<1x4xf32>
}
