// jepa/config.hpp — compile-time configuration shared by every header.
//
// JEPA_HOST_DEVICE marks scalar formulas that the CPU backend and the CUDA kernels share, so both
// sides compute literally the same expression (DESIGN.md decision 4).
#pragma once

#define JEPA_VERSION_MAJOR 0
#define JEPA_VERSION_MINOR 1
#define JEPA_VERSION_PATCH 0

#if defined(__CUDACC__) || defined(__HIPCC__)
#define JEPA_HOST_DEVICE __host__ __device__
#define JEPA_DEVICE __device__
#else
#define JEPA_HOST_DEVICE
#define JEPA_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define JEPA_RESTRICT __restrict__
#define JEPA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define JEPA_RESTRICT
#define JEPA_ALWAYS_INLINE inline
#endif

// OpenMP pragmas go through JEPA_OMP(...) so that a build without OpenMP sees no unknown-pragma
// warnings from our headers:  JEPA_OMP(parallel for schedule(static)).
#if defined(_OPENMP)
#define JEPA_HAVE_OPENMP 1
#define JEPA_PRAGMA(x) _Pragma(#x)
#define JEPA_OMP(...) JEPA_PRAGMA(omp __VA_ARGS__)
#else
#define JEPA_OMP(...)
#endif
