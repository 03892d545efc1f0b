// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='assign-precision{int16=a float=b}' | filecheck %s
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='assign-precision{int16=nn.add int8=a}' | filecheck %s --check-prefix=KIND
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='assign-precision{float=b},infer-scales,legalize-fallback' | filecheck %s --check-prefix=ISLAND
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='assign-precision{float=nowhere}' | filecheck %s --check-prefix=MISSING

// The pass only records the choice: qcc.precision on the named ops, nothing else changes.
// CHECK-LABEL: func.func @Mixed
// CHECK:         nn.add %{{.*}}, %{{.*}} {qcc.precision = "int16", fused_activation = "NONE"} {{.*}} loc("a")
// CHECK:         nn.add %{{.*}}, %{{.*}} {qcc.precision = "float", fused_activation = "NONE"} {{.*}} loc("b")
// CHECK-NOT:     quant.dcast

// A kind names every op of it; int8 is applied first, so the kind-wide int16 wins on "a".
// KIND:          nn.add {{.*}}qcc.precision = "int16"{{.*}} loc("a")
// KIND:          nn.add {{.*}}qcc.precision = "int16"{{.*}} loc("b")

// After infer-scales and legalize-fallback, "b" computes in float (its int8 input dequantized).
// ISLAND-LABEL:  func.func @Mixed
// ISLAND:        nn.add {{.*}} -> tensor<4x!quant.uniform<i8:f32{{.*}}>> loc("a")
// ISLAND:        quant.dcast
// ISLAND:        nn.add {{.*}} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("b")
// ISLAND-NEXT:   func.return %{{.*}} : tensor<4xf32>

// MISSING: assign-precision{float=...}: no op named 'nowhere' (name an op by its location
func.func @Mixed(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> tensor<4xf32> {
  %x = quant.stats %arg0 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %y = quant.stats %arg1 {layer_stats = dense<[-1.0, 1.0]> : tensor<2xf32>} : tensor<4xf32>
  %0 = nn.add %x, %y {fused_activation = "NONE"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("a")
  %1 = quant.stats %0 {layer_stats = dense<[-2.0, 2.0]> : tensor<2xf32>} : tensor<4xf32>
  %2 = nn.add %1, %y {fused_activation = "NONE"} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("b")
  %3 = quant.stats %2 {layer_stats = dense<[-3.0, 3.0]> : tensor<2xf32>} : tensor<4xf32>
  func.return %3 : tensor<4xf32>
}
