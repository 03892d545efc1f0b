// RUN: qcc %s --split-input-file --pass-pipeline='legalize-target{target=xnnpack}' | filecheck %s
// RUN: qcc %s --split-input-file --pass-pipeline='legalize-target{target=reference}' | filecheck %s --check-prefix=REF
// RUN: qcc %s --split-input-file --verify-diagnostics --pass-pipeline='legalize-target{target=int8-only}' | filecheck %s --check-prefix=ONLY

// XNNPACK takes PRELU and HARD_SWISH in float but not in int8 (its measured table): both
// become float, in one island (no qcast/dcast between them); alpha, used only by the float
// PRELU, goes back to f32; the ADDs, which XNNPACK takes in int8, stay int8. Every float op
// says why. The reference target (no table) keeps every op with an int8 kernel int8.
// CHECK-LABEL: func.func @PReluBecomesFloatIsland
// CHECK-NEXT:    %[[A:.*]] = nn.constant {{.*}} : tensor<1x1x3xf32>
// CHECK-NEXT:    %[[ADD:.*]] = nn.add %arg0, %arg0 {{.*}} -> tensor<1x4x4x3x!quant.uniform<i8:f32, 5.000000e-02:3>> loc("add")
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[ADD]] : {{.*}} to tensor<1x4x4x3xf32> loc("prelu")
// CHECK-NEXT:    %[[P:.*]] = nn.prelu %[[D]], %[[A]] {qcc.reason = "xnnpack does not take int8 PRELU (measured); float PRELU runs in the delegate"} : (tensor<1x4x4x3xf32>, tensor<1x1x3xf32>) -> tensor<1x4x4x3xf32> loc("prelu")
// CHECK-NEXT:    %[[H:.*]] = nn.hard_swish %[[P]] {qcc.reason = "xnnpack does not take int8 HARD_SWISH (measured); {{.*}}"} : (tensor<1x4x4x3xf32>) -> tensor<1x4x4x3xf32> loc("hswish")
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %[[H]] : tensor<1x4x4x3xf32> to tensor<1x4x4x3x!quant.uniform<i8:f32, 5.000000e-02:3>> loc("hswish")
// CHECK-NEXT:    %[[ADD2:.*]] = nn.add %[[Q]], %arg0 {fused_activation = "RELU"} : {{.*}} loc("add2")
// CHECK-NEXT:    func.return %[[ADD2]]
// REF-LABEL: func.func @PReluBecomesFloatIsland
// REF-NOT:     quant.dcast
// REF:         nn.prelu %{{.*}}, %{{.*}} : (tensor<1x4x4x3x!quant.uniform
// REF-NOT:     quant.dcast
// REF:         func.return
// ONLY-LABEL: func.func @PReluBecomesFloatIsland
// ONLY-NOT:    quant.dcast
// ONLY:        func.return
func.func @PReluBecomesFloatIsland(%arg0: tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> {
  %a = nn.constant {value = dense<[[[0.1, 0.2, 0.3]]]> : tensor<1x1x3xf32>} : tensor<1x1x3x!quant.uniform<i8:f32, 0.0023622048:-128>>
  %0 = nn.add %arg0, %arg0 {fused_activation = "NONE"} : (tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>, tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> loc("add")
  %1 = nn.prelu %0, %a : (tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>, tensor<1x1x3x!quant.uniform<i8:f32, 0.0023622048:-128>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> loc("prelu")
  %2 = nn.hard_swish %1 : (tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> loc("hswish")
  %3 = nn.add %2, %arg0 {fused_activation = "RELU"} : (tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>, tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> loc("add2")
  func.return %3 : tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>
}

// -----

// A PRELU whose alpha is one number is LEAKY_RELU, which XNNPACK takes in int8 (and which
// costs less than the float island): an int8 rewrite, its alpha constant gone.
// CHECK-LABEL: func.func @UniformAlphaPReluBecomesLeakyRelu
// CHECK-NEXT:    %[[L:.*]] = nn.leaky_relu %arg0 {qcc.reason = "xnnpack does not take int8 PRELU (measured); it takes LEAKY_RELU(alpha=0.25) in int8, the same function", alpha = 2.500000e-01 : f32} : (tensor<1x4x4x3x!quant.uniform<i8:f32, 5.000000e-02:3>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 5.000000e-02:3>> loc("prelu")
// CHECK-NEXT:    func.return %[[L]]
// REF-LABEL: func.func @UniformAlphaPReluBecomesLeakyRelu
// REF:         nn.prelu
// ONLY-LABEL: func.func @UniformAlphaPReluBecomesLeakyRelu
// ONLY:        nn.prelu
func.func @UniformAlphaPReluBecomesLeakyRelu(%arg0: tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> {
  %a = nn.constant {value = dense<0.25> : tensor<1x1x3xf32>} : tensor<1x1x3x!quant.uniform<i8:f32, 0.0023622048:-128>>
  %0 = nn.prelu %arg0, %a : (tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>, tensor<1x1x3x!quant.uniform<i8:f32, 0.0023622048:-128>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>> loc("prelu")
  func.return %0 : tensor<1x4x4x3x!quant.uniform<i8:f32, 0.05:3>>
}

// -----

// An op without an int8 kernel is a float island on every target that allows float ops,
// with its declaration's reason; int8-only refuses it, naming it.
// CHECK-LABEL: func.func @NoInt8KernelIsAnIsland
// CHECK-NEXT:    %[[D0:.*]] = quant.dcast %arg0
// CHECK-NEXT:    %[[D1:.*]] = quant.dcast %arg0
// CHECK-NEXT:    %[[V:.*]] = nn.div %[[D0]], %[[D1]] {qcc.reason = "no int8 kernel (DIV is not in TFLite's int8 quantization spec {{.*}}"
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %[[V]]
// CHECK-NEXT:    func.return %[[Q]]
// REF-LABEL: func.func @NoInt8KernelIsAnIsland
// REF:         nn.div {{.*}} {qcc.reason = "no int8 kernel
// ONLY:      legalize-target: 1 op without an int8 kernel, and target int8-only allows no float op
// ONLY-NEXT: loc("div"): 'nn.div' op: no int8 kernel (DIV is not in TFLite's int8 quantization spec
func.func @NoInt8KernelIsAnIsland(%arg0: tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> {
  %0 = nn.div %arg0, %arg0 {fused_activation = "NONE"} : (tensor<4x!quant.uniform<i8:f32, 0.1>>, tensor<4x!quant.uniform<i8:f32, 0.1>>) -> tensor<4x!quant.uniform<i8:f32, 0.1>> loc("div")
  func.return %0 : tensor<4x!quant.uniform<i8:f32, 0.1>>
}

// -----

// XNNPACK takes SQUEEZE in neither precision: it runs outside the delegate either way, and
// int8 is no slower than float plus the conversions of an island: it stays int8.
// CHECK-LABEL: func.func @DelegatedInNeitherPrecisionStaysInt8
// CHECK-NEXT:    %[[S:.*]] = nn.squeeze %arg0 {squeeze_dims = array<i64: 0, 1, 2>} : (tensor<1x1x1x16x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<16x!quant.uniform<i8:f32, 1.000000e-01>> loc("squeeze")
// CHECK-NEXT:    func.return %[[S]]
// REF-LABEL: func.func @DelegatedInNeitherPrecisionStaysInt8
// ONLY-LABEL: func.func @DelegatedInNeitherPrecisionStaysInt8
func.func @DelegatedInNeitherPrecisionStaysInt8(%arg0: tensor<1x1x1x16x!quant.uniform<i8:f32, 0.1>>) -> tensor<16x!quant.uniform<i8:f32, 0.1>> {
  %0 = nn.squeeze %arg0 {squeeze_dims = array<i64: 0, 1, 2>} : (tensor<1x1x1x16x!quant.uniform<i8:f32, 0.1>>) -> tensor<16x!quant.uniform<i8:f32, 0.1>> loc("squeeze")
  func.return %0 : tensor<16x!quant.uniform<i8:f32, 0.1>>
}
