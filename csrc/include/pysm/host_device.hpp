// PYSM_HD marks small functions shared verbatim by a CPU twin and its CUDA kernel.
#pragma once

#if defined(__CUDACC__)
#define PYSM_HD __host__ __device__ __forceinline__
#else
#define PYSM_HD inline
#endif

// The hot loops of the CPU twins, compiled as SIMD clones that the loader picks by the CPU's
// features (AVX-512, AVX2, the x86-64 baseline), where the compiler takes the list (CMake checks).
#if PYSM_TARGET_CLONES && !defined(__CUDACC__)
#define PYSM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define PYSM_SIMD_CLONES
#endif

namespace pysm::detail {

// Multiply/add/subtract rounded once each, on the device as on the host: the CUDA compiler
// would otherwise fuse a*b+c into one FMA and the twins would differ in the last bit.
PYSM_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PYSM_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
PYSM_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

}  // namespace pysm::detail
