// RUN: qcc %s --emit=mlir | filecheck %s
// Quantized types print in MLIR's quant dialect syntax: scales in MLIR's float style, zero
// points omitted when 0, storage ranges omitted when they are the storage type's full range.

// CHECK-LABEL: func.func @PerTensorScaleAndZeroPoint
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 2.350000e-02:-12>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f32, 9.987200e-01:127>
func.func @PerTensorScaleAndZeroPoint() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, 0.0235:-12>
  %1 = "test.op"() : () -> !quant.uniform<u8:f32, 0.99872:127>
  func.return
}

// CHECK-LABEL: func.func @ZeroPointOmittedWhenZero
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 5.000000e-01>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 5.000000e-01>
func.func @ZeroPointOmittedWhenZero() {
  %0 = "test.op"() : () -> !quant.uniform<i8:f32, 0.5:0>
  %1 = "test.op"() : () -> !quant.uniform<i8:f32, 0.5>
  func.return
}

// CHECK-LABEL: func.func @FullStorageRangeOmitted
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 1.000000e+00>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f32, 1.000000e+00:128>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i16:f32, 1.000000e+00>
func.func @FullStorageRangeOmitted() {
  %0 = "test.op"() : () -> !quant.uniform<i8<-128:127>:f32, 1.0>
  %1 = "test.op"() : () -> !quant.uniform<u8<0:255>:f32, 1.0:128>
  %2 = "test.op"() : () -> !quant.uniform<i16<-32768:32767>:f32, 1.0>
  func.return
}

// CHECK-LABEL: func.func @NarrowStorageRangeKept
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8<-127:127>:f32, 1.000000e+00>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u16<0:1023>:f32, 1.230000e+00:512>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8<-8:7>:f32, 9.987200e-01:7>
func.func @NarrowStorageRangeKept() {
  %0 = "test.op"() : () -> !quant.uniform<i8<-127:127>:f32, 1.0>
  %1 = "test.op"() : () -> !quant.uniform<u16<0:1023>:f32, 1.23:512>
  %2 = "test.op"() : () -> !quant.uniform<i8<-8:7>:f32, 0.99872:7>
  func.return
}

// CHECK-LABEL: func.func @StorageTypes
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i4:f32, 2.000000e+02>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u16:f32, 2.000000e+02>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i32:f32, 2.000000e+02>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u32:f32, 2.000000e+02>
func.func @StorageTypes() {
  %0 = "test.op"() : () -> !quant.uniform<i4:f32, 2.0e+2>
  %1 = "test.op"() : () -> !quant.uniform<u16:f32, 2.0e+2>
  %2 = "test.op"() : () -> !quant.uniform<i32:f32, 2.0e+2>
  %3 = "test.op"() : () -> !quant.uniform<u32:f32, 2.0e+2>
  func.return
}

// CHECK-LABEL: func.func @ExpressedTypes
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f16, 2.000000e-02>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:bf16, 2.000000e-02>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f64, 2.000000e-02>
func.func @ExpressedTypes() {
  %0 = "test.op"() : () -> !quant.uniform<u8:f16, 2.0e-2>
  %1 = "test.op"() : () -> !quant.uniform<u8:bf16, 2.0e-2>
  %2 = "test.op"() : () -> !quant.uniform<u8:f64, 2.0e-2>
  func.return
}

// Six significant digits when they read back to the same double, else 17 digits
// (positional down to 0.00..., scientific below), else the double's bits in hex.
// CHECK-LABEL: func.func @ScalePrecision
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f32, 0.0078431372549019607:128>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f32, 0.0078431372549019607:128>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 7.8431372549019615E-4>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 12.345678900999999>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32, 9.000000e-03>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<u8:f32, 0x41646ABBA0000000:128>
func.func @ScalePrecision() {
  %0 = "test.op"() : () -> !quant.uniform<u8:f32, 0.0078431372549019607:128>
  %1 = "test.op"() : () -> !quant.uniform<u8:f32, 0.00784313725490196:128>
  %2 = "test.op"() : () -> !quant.uniform<i8:f32, 7.8431372549019615E-4>
  %3 = "test.op"() : () -> !quant.uniform<i8:f32, 12.345678901>
  %4 = "test.op"() : () -> !quant.uniform<i8:f32, 0.009>
  %5 = "test.op"() : () -> !quant.uniform<u8:f32, 0x41646ABBA0000000:128>
  func.return
}

// CHECK-LABEL: func.func @PerAxis
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8<-127:127>:f32:3, {1.200000e-02,9.000000e-03:2}>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32:1, {2.000000e+02:-120,9.987200e-01:127}>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> !quant.uniform<i8:f32:0, {2.000000e+02}>
func.func @PerAxis() {
  %0 = "test.op"() : () -> !quant.uniform<i8<-127:127>:f32:3, {0.012, 0.009:2}>
  %1 = "test.op"() : () -> !quant.uniform<i8:f32:1, {2.0e+2:-120,0.99872:127}>
  %2 = "test.op"() : () -> !quant.uniform<i8:f32:0, {2.0e+2:0}>
  func.return
}

// CHECK-LABEL: func.func @NestedInTensors
// CHECK-SAME:    (%a: tensor<1x8x8x3x!quant.uniform<i8:f32, 7.800000e-03:-1>>) -> tensor<2x3x4x!quant.uniform<i8:f32:1, {3.000000e+00,4.000000e+00,5.000000e+00}>>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> tensor<?x?x!quant.uniform<u16:f32:0, {2.000000e+00:10,3.000000e+00:20}>>
// CHECK-NEXT:    %{{.*}} = "test.op"() : () -> tensor<*x!quant.uniform<i8:f32, 5.000000e-01>>
// CHECK-NEXT:    %[[W:.*]] = "test.op"() : () -> tensor<2x3x4x!quant.uniform<i8:f32:1, {3.000000e+00,4.000000e+00,5.000000e+00}>>
// CHECK-NEXT:    func.return %[[W]] : tensor<2x3x4x!quant.uniform<i8:f32:1, {3.000000e+00,4.000000e+00,5.000000e+00}>>
func.func @NestedInTensors(%a: tensor<1x8x8x3x!quant.uniform<i8:f32, 0.0078:-1>>) -> tensor<2x3x4x!quant.uniform<i8:f32:1, {3.0, 4.0, 5.0}>> {
  %0 = "test.op"() : () -> tensor<?x?x!quant.uniform<u16:f32:0, {2.0:10, 3.0:20}>>
  %1 = "test.op"() : () -> tensor<*x!quant.uniform<i8:f32, 0.5>>
  %w = "test.op"() : () -> tensor<2x3x4x!quant.uniform<i8:f32:1, {3.0, 4.0, 5.0}>>
  func.return %w : tensor<2x3x4x!quant.uniform<i8:f32:1, {3.0, 4.0, 5.0}>>
}
