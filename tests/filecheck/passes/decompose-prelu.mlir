// RUN: qcc %s --split-input-file --pass-pipeline='builtin.module(decompose-prelu)' | filecheck %s

// Every alpha <= 1 (negative ones included): prelu(x) = max(x, alpha * x).
// CHECK-LABEL: func.func @AlphasAtMostOneBecomeMulMaximum
// CHECK-NEXT:    %[[A:.*]] = nn.constant
// CHECK-NEXT:    %[[AX:.*]] = nn.mul %x, %[[A]] {fused_activation = "NONE"} : (tensor<1x2x2x3xf32>, tensor<1x1x3xf32>) -> tensor<1x2x2x3xf32> loc("p/alpha_x")
// CHECK-NEXT:    %[[Y:.*]] = nn.maximum %x, %[[AX]] : (tensor<1x2x2x3xf32>, tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32> loc("p")
// CHECK-NEXT:    func.return %[[Y]]
func.func @AlphasAtMostOneBecomeMulMaximum(%x: tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32> {
  %a = nn.constant {value = dense<[[[2.500000e-01, -5.000000e-01, 1.000000e+00]]]> : tensor<1x1x3xf32>} : tensor<1x1x3xf32>
  %y = nn.prelu %x, %a : (tensor<1x2x2x3xf32>, tensor<1x1x3xf32>) -> tensor<1x2x2x3xf32> loc("p")
  func.return %y : tensor<1x2x2x3xf32>
}

// -----

// An alpha above 1: prelu(x) = relu(x) + alpha * (x - relu(x)).
// CHECK-LABEL: func.func @AlphaAboveOneBecomesReluSubMulAdd
// CHECK-NEXT:    %[[A:.*]] = nn.constant
// CHECK-NEXT:    %[[R:.*]] = nn.relu %x : {{.*}} loc("p/pos")
// CHECK-NEXT:    %[[N:.*]] = nn.sub %x, %[[R]] {fused_activation = "NONE"} : {{.*}} loc("p/neg")
// CHECK-NEXT:    %[[M:.*]] = nn.mul %[[N]], %[[A]] {fused_activation = "NONE"} : {{.*}} loc("p/alpha_neg")
// CHECK-NEXT:    %[[Y:.*]] = nn.add %[[R]], %[[M]] {fused_activation = "NONE"} : {{.*}} loc("p")
// CHECK-NEXT:    func.return %[[Y]]
func.func @AlphaAboveOneBecomesReluSubMulAdd(%x: tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32> {
  %a = nn.constant {value = dense<[[[2.500000e-01, 1.500000e+00, 1.000000e+00]]]> : tensor<1x1x3xf32>} : tensor<1x1x3xf32>
  %y = nn.prelu %x, %a : (tensor<1x2x2x3xf32>, tensor<1x1x3xf32>) -> tensor<1x2x2x3xf32> loc("p")
  func.return %y : tensor<1x2x2x3xf32>
}

// -----

// A PRELU whose alpha is computed, not constant, is left alone.
// CHECK-LABEL: func.func @NonConstantAlphaUnchanged
// CHECK-NEXT:    %[[Y:.*]] = nn.prelu %x, %a
func.func @NonConstantAlphaUnchanged(%x: tensor<1x2x2x3xf32>, %a: tensor<1x1x3xf32>) -> tensor<1x2x2x3xf32> {
  %y = nn.prelu %x, %a : (tensor<1x2x2x3xf32>, tensor<1x1x3xf32>) -> tensor<1x2x2x3xf32>
  func.return %y : tensor<1x2x2x3xf32>
}
