// RUN: qcc %s --split-input-file --pass-pipeline='builtin.module(canonicalize-custom-ops)' | filecheck %s

// MediaPipe's Convolution2DTransposeBias (options: the raw TfLiteTransposeConvParams struct,
// padding 1 = SAME, stride_width 2, stride_height 2) becomes TRANSPOSE_CONV with its bias.
// CHECK-LABEL: func.func @TransposeConvBiasBecomesBuiltin
// CHECK-NEXT:    %[[W:.*]] = nn.constant
// CHECK-NEXT:    %[[B:.*]] = nn.constant
// CHECK-NEXT:    %[[Y:.*]] = nn.transpose_conv %x, %[[W]], %[[B]] {stride = array<i64: 2, 2>, padding = "SAME", fused_activation = "NONE"} : (tensor<1x4x4x2xf32>, tensor<3x2x2x2xf32>, tensor<3xf32>) -> tensor<1x8x8x3xf32> loc("segment")
// CHECK-NEXT:    func.return %[[Y]]
func.func @TransposeConvBiasBecomesBuiltin(%x: tensor<1x4x4x2xf32>) -> tensor<1x8x8x3xf32> {
  %w = nn.constant {value = dense<0.5> : tensor<3x2x2x2xf32>} : tensor<3x2x2x2xf32>
  %b = nn.constant {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : tensor<3xf32>
  %y = nn.generic %x, %w, %b {custom = true, version = 1 : i64, op_name = "Convolution2DTransposeBias", options = "0x010000000200000002000000"} : (tensor<1x4x4x2xf32>, tensor<3x2x2x2xf32>, tensor<3xf32>) -> tensor<1x8x8x3xf32> loc("segment")
  func.return %y : tensor<1x8x8x3xf32>
}

// -----

// VALID padding (2), stride 1x2 (stride_width 2, stride_height 1): output (4-1)*1+3 = 6 by
// (4-1)*2+3 = 9.
// CHECK-LABEL: func.func @ValidPaddingAndUnequalStrides
// CHECK:         nn.transpose_conv %x, %{{.*}}, %{{.*}} {stride = array<i64: 1, 2>, padding = "VALID", fused_activation = "NONE"}
func.func @ValidPaddingAndUnequalStrides(%x: tensor<1x4x4x2xf32>) -> tensor<1x6x9x3xf32> {
  %w = nn.constant {value = dense<0.5> : tensor<3x3x3x2xf32>} : tensor<3x3x3x2xf32>
  %b = nn.constant {value = dense<0.0> : tensor<3xf32>} : tensor<3xf32>
  %y = nn.generic %x, %w, %b {custom = true, version = 1 : i64, op_name = "Convolution2DTransposeBias", options = "0x020000000200000001000000"} : (tensor<1x4x4x2xf32>, tensor<3x3x3x2xf32>, tensor<3xf32>) -> tensor<1x6x9x3xf32> loc("up")
  func.return %y : tensor<1x6x9x3xf32>
}

// -----

// Options it cannot read (4 bytes, not the 12-byte struct) and other custom ops: unchanged.
// CHECK-LABEL: func.func @MalformedOptionsAndOtherCustomOpsStay
// CHECK:         nn.generic %x, %{{.*}}, %{{.*}} {custom = true, version = 1 : i64, op_name = "Convolution2DTransposeBias", options = "0x01000000"}
// CHECK:         nn.generic %{{.*}} {custom = true, version = 1 : i64, op_name = "MaxUnpooling2D"
// CHECK-NOT:     nn.transpose_conv
func.func @MalformedOptionsAndOtherCustomOpsStay(%x: tensor<1x4x4x2xf32>) -> tensor<1x8x8x3xf32> {
  %w = nn.constant {value = dense<0.5> : tensor<3x2x2x2xf32>} : tensor<3x2x2x2xf32>
  %b = nn.constant {value = dense<0.0> : tensor<3xf32>} : tensor<3xf32>
  %y = nn.generic %x, %w, %b {custom = true, version = 1 : i64, op_name = "Convolution2DTransposeBias", options = "0x01000000"} : (tensor<1x4x4x2xf32>, tensor<3x2x2x2xf32>, tensor<3xf32>) -> tensor<1x8x8x3xf32> loc("bad")
  %z = nn.generic %y {custom = true, version = 1 : i64, op_name = "MaxUnpooling2D", options = "0x00"} : (tensor<1x8x8x3xf32>) -> tensor<1x8x8x3xf32> loc("other")
  func.return %z : tensor<1x8x8x3xf32>
}

// -----

// A result shape other than the one MediaPipe's Prepare computes (8x8 here): unchanged.
// CHECK-LABEL: func.func @ResultShapeDisagreesStays
// CHECK:         nn.generic
// CHECK-NOT:     nn.transpose_conv
func.func @ResultShapeDisagreesStays(%x: tensor<1x4x4x2xf32>) -> tensor<1x7x7x3xf32> {
  %w = nn.constant {value = dense<0.5> : tensor<3x2x2x2xf32>} : tensor<3x2x2x2xf32>
  %b = nn.constant {value = dense<0.0> : tensor<3xf32>} : tensor<3xf32>
  %y = nn.generic %x, %w, %b {custom = true, version = 1 : i64, op_name = "Convolution2DTransposeBias", options = "0x010000000200000002000000"} : (tensor<1x4x4x2xf32>, tensor<3x2x2x2xf32>, tensor<3xf32>) -> tensor<1x7x7x3xf32> loc("odd")
  func.return %y : tensor<1x7x7x3xf32>
}
