// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='verify-int8' | filecheck %s

// Boundary qcast/dcast are allowed: nothing is reported, the module is printed.
// CHECK-LABEL: func.func @Int8ModelPasses
// CHECK:         nn.relu
func.func @Int8ModelPasses(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %q = quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1>>
  %0 = nn.relu %q : (tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> loc("relu")
  %d = quant.dcast %0 : tensor<4x!quant.uniform<i8:f32, 0.1>> to tensor<4xf32>
  func.return %d : tensor<4xf32>
}

// -----

// Every offender is listed, each on its own line with its location.
// CHECK:      verify-int8: 5 problems, the model cannot run in int8 only
// CHECK-NEXT: loc("segment"): 'quant.dcast' op: int8 to float dequantize inside the model (float island edge)
// CHECK-NEXT: loc("segment"): 'nn.generic' op 'Convolution2DTransposeBias': no int8 kernel (custom op)
// CHECK-NEXT: loc("segment"): 'quant.qcast' op: float to int8 quantize inside the model (float island edge)
// CHECK-NEXT: loc("div"): 'nn.div' op: no int8 kernel
// CHECK-NEXT: loc("tanh"): 'nn.tanh' op: float operand #0 (expected int8)
func.func @EveryOffenderIsReported(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %q = quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1>>
  %d = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.1>> to tensor<4xf32> loc("segment")
  %0 = nn.generic %d {op_name = "Convolution2DTransposeBias", custom = true} : (tensor<4xf32>) -> tensor<4xf32> loc("segment")
  %1 = quant.qcast %0 : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1>> loc("segment")
  %2 = nn.div %arg0, %arg0 {fused_activation = "NONE"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("div")
  %3 = nn.tanh %2 : (tensor<4xf32>) -> tensor<4x!quant.uniform<i8:f32, 0.0078125>> loc("tanh")
  %4 = nn.add %1, %3 {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 0.1>>, tensor<4x!quant.uniform<i8:f32, 0.0078125>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> loc("add")
  %5 = quant.dcast %4 : tensor<4x!quant.uniform<i8:f32, 0.1>> to tensor<4xf32>
  func.return %5 : tensor<4xf32>
}
