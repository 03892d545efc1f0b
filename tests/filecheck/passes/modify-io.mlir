// RUN: qcc %s --pass-pipeline='modify-io{dtype=int8}' | filecheck %s --check-prefix=INT8
// RUN: qcc %s --pass-pipeline='modify-io{dtype=uint8}' | filecheck %s --check-prefix=UINT8
// RUN: qcc %s --pass-pipeline='modify-io{dtype=float}' | filecheck %s --check-prefix=FLOAT

// INT8-LABEL: func.func @IntegerInputsAndOutputs(%arg0: tensor<4x!quant.uniform<i8:f32, 1.000000e-01:-3>>) -> tensor<4x!quant.uniform<i8:f32, 2.000000e-01:5>>
// INT8-NEXT:    %[[R:.*]] = nn.relu %arg0
// INT8-NEXT:    func.return %[[R]] : tensor<4x!quant.uniform<i8:f32, 2.000000e-01:5>>

// UINT8-LABEL: func.func @IntegerInputsAndOutputs(%arg0: tensor<4x!quant.uniform<u8:f32, 1.000000e-01:125>>) -> tensor<4x!quant.uniform<u8:f32, 2.000000e-01:133>>
// UINT8-NEXT:    %[[Q:.*]] = quant.qcast %arg0 : tensor<4x!quant.uniform<u8:f32, 1.000000e-01:125>> to tensor<4x!quant.uniform<i8:f32, 1.000000e-01:-3>>
// UINT8-NEXT:    %[[R:.*]] = nn.relu %[[Q]]
// UINT8-NEXT:    %[[O:.*]] = quant.qcast %[[R]] : tensor<4x!quant.uniform<i8:f32, 2.000000e-01:5>> to tensor<4x!quant.uniform<u8:f32, 2.000000e-01:133>>
// UINT8-NEXT:    func.return %[[O]]

// FLOAT-LABEL: func.func @IntegerInputsAndOutputs(%arg0: tensor<4xf32>) -> tensor<4xf32>
// FLOAT-NEXT:    quant.qcast %arg0
func.func @IntegerInputsAndOutputs(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %q = quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1:-3>>
  %0 = nn.relu %q : (tensor<4x!quant.uniform<i8:f32, 0.1:-3>>) -> tensor<4x!quant.uniform<i8:f32, 0.2:5>>
  %d = quant.dcast %0 : tensor<4x!quant.uniform<i8:f32, 0.2:5>> to tensor<4xf32>
  func.return %d : tensor<4xf32>
}
