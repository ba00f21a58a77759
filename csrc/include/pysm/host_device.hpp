// PYSM_HD marks small functions shared verbatim by a CPU twin and its CUDA kernel.
#pragma once

#if defined(__CUDACC__)
#define PYSM_HD __host__ __device__ __forceinline__
#else
#define PYSM_HD inline
#endif
