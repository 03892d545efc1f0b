// Two samples of a 1x4 input; the ranges below are exact: relu = [0, 3], add = relu + x.
// channel_mean is the mean over all but the last axis: x = [-1.5, 0.75, 1.125, 1.25].
// RUN: %python -c "import numpy as np; np.savez('%t.npz', np.array([[[-1, 0.5, 2, 3]], [[-2, 1, 0.25, -0.5]]], np.float32))"
// RUN: qcc %s --pass-pipeline='annotate-ranges{calibration=%t.npz bins=8}' | filecheck %s
// Statistics saved with --save-stats attach the very same annotations, without the data:
// RUN: qcc %s --pass-pipeline='annotate-ranges{calibration=%t.npz bins=8}' --save-stats %t.stats.npz -o %t.mlir
// RUN: qcc %s --pass-pipeline='annotate-ranges{calibration=%t.stats.npz bins=8}' | filecheck %s
// RUN: not qcc %s --pass-pipeline='annotate-ranges{calibration=%t.stats.npz}' 2>&1 | filecheck %s --check-prefix=BINS
// RUN: qcc %s --pass-pipeline='annotate-ranges{calibration=%t.npz},annotate-ranges{calibration=%t.npz samples=1 bins=0}' | filecheck %s --check-prefix=AGAIN
// RUN: not qcc %s --pass-pipeline='annotate-ranges{calibration=%t.missing.npz}' 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not qcc %s --pass-pipeline='annotate-ranges' 2>&1 | filecheck %s --check-prefix=NODATA
// RUN: not qcc %s --pass-pipeline='annotate-ranges{calibration=%t.npz method=bogus}' 2>&1 | filecheck %s --check-prefix=METHOD

// CHECK-LABEL: func.func @main
// CHECK-NEXT:    %[[X:.*]] = quant.stats %arg0 {layer_stats = dense<[-2.000000e+00, 3.000000e+00]> : tensor<2xf32>, histogram = dense<[1, 2, 2, 1, 1, 1, 0, 0]> : tensor<8xi64>, histogram_range = dense<[-2.000000e+00, 6.000000e+00]> : tensor<2xf32>, channel_mean = dense<[-1.500000e+00, 7.500000e-01, 1.125000e+00, 1.250000e+00]> : tensor<4xf32>} : tensor<1x4xf32>
// CHECK-NEXT:    %[[R:.*]] = nn.relu %[[X]]
// CHECK-NEXT:    %[[RS:.*]] = quant.stats %[[R]] {layer_stats = dense<[0.000000e+00, 3.000000e+00]> : tensor<2xf32>, histogram = dense<[4, 1, 1, 0, 1, 0, 1, 0]> : tensor<8xi64>, histogram_range = dense<[0.000000e+00, 4.000000e+00]> : tensor<2xf32>, channel_mean = dense<[0.000000e+00, 7.500000e-01, 1.125000e+00, 1.500000e+00]> : tensor<4xf32>} : tensor<1x4xf32> loc("relu")
// CHECK-NEXT:    %[[A:.*]] = nn.add %[[RS]], %[[X]]
// CHECK-NEXT:    %[[AS:.*]] = quant.stats %[[A]] {layer_stats = dense<[-2.000000e+00, 6.000000e+00]> : tensor<2xf32>, {{.*}}, channel_mean = dense<[-1.500000e+00, 1.500000e+00, 2.250000e+00, 2.750000e+00]> : tensor<4xf32>} : tensor<1x4xf32> loc("add")
// CHECK-NEXT:    func.return %[[AS]]

// Re-annotating replaces the stats (here: first sample only, no histogram), never stacks them.
// AGAIN-LABEL: func.func @main
// AGAIN-NEXT:    %[[X:.*]] = quant.stats %arg0 {layer_stats = dense<[-1.000000e+00, 3.000000e+00]> : tensor<2xf32>, channel_mean = dense<[-1.000000e+00, 5.000000e-01, 2.000000e+00, 3.000000e+00]> : tensor<4xf32>} : tensor<1x4xf32>
// AGAIN-NEXT:    %[[R:.*]] = nn.relu %[[X]]
// AGAIN-NEXT:    %[[RS:.*]] = quant.stats %[[R]] {layer_stats = dense<[0.000000e+00, 3.000000e+00]> : tensor<2xf32>, channel_mean = {{.*}}}
// AGAIN-NEXT:    %[[A:.*]] = nn.add %[[RS]], %[[X]]
// AGAIN-NEXT:    %[[AS:.*]] = quant.stats %[[A]] {layer_stats = dense<[-1.000000e+00, 6.000000e+00]> : tensor<2xf32>, channel_mean = {{.*}}}
// AGAIN-NEXT:    func.return %[[AS]]
// AGAIN-NOT:     quant.stats

// MISSING: qcc: error: {{.*}}.missing.npz: no such file or folder
// BINS: qcc: error: annotate-ranges: {{.*}}.stats.npz holds histograms of 8 bins, not the 2048 bins asked for; ask for bins=8
// NODATA: qcc: error: annotate-ranges needs representative data
// METHOD: qcc: error: pass 'annotate-ranges': method must be one of minmax, percentile, mse, auto, got 'bogus'

func.func @main(%arg0: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %0 = nn.relu %arg0 : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("relu")
  %1 = nn.add %0, %arg0 {fused_activation = "NONE"} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("add")
  func.return %1 : tensor<1x4xf32>
}
