// jepa/backend/cpu/cpu_features.hpp — what the CPU this process runs on can execute.
//
// The GEMM layer (backend/cpu/gemm.hpp) picks its provider and precision at run time from these
// flags, never from the flags the program was compiled with: a binary built for x86-64-v3 runs the
// AVX-512 or AMX kernels of oneDNN on a CPU that has them. Each flag needs both the CPU (CPUID) and
// the operating system (XGETBV: the register state is saved on a context switch):
//   avx2        CPUID.7.0:EBX[5] and CPUID.1:ECX[12] (FMA), XCR0 bits 1–2 (SSE, AVX state)
//   avx512      CPUID.7.0:EBX[16,17,30,31] (AVX512 F, DQ, BW, VL), XCR0 bits 5–7 (opmask, ZMM state)
//   avx512_bf16 CPUID.7.1:EAX[5] (VCVTNE2PS2BF16, VDPBF16PS) on top of avx512
//   amx_bf16    CPUID.7.0:EDX[22] (AMX-BF16) and EDX[24] (AMX-TILE), XCR0 bits 17–18 (tile state);
//               Linux additionally asks each process to request the tile state (oneDNN does that).
// On a non-x86 build every flag is false and the brand is "unknown CPU".
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define JEPA_X86 1
#endif

namespace jepa::backend::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool avx512 = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
  std::string brand = "unknown CPU";  // CPUID 0x80000002–4, e.g. "AMD EPYC 9R14 96-Core Processor"

  /// The instruction sets in one phrase, e.g. "AVX2, AVX-512, AVX512-BF16, no AMX".
  std::string summary() const {
    std::string s = avx2 ? "AVX2" : "no AVX2";
    if (avx2) s += avx512 ? ", AVX-512" : ", no AVX-512";
    if (avx512) s += avx512_bf16 ? ", AVX512-BF16" : ", no AVX512-BF16";
    if (avx512) s += amx_bf16 ? ", AMX-BF16" : ", no AMX";
    return s;
  }
  /// bf16 products run natively (AMX tiles or AVX512-BF16 dot products).
  bool native_bf16() const { return amx_bf16 || avx512_bf16; }
};

namespace detail {
#ifdef JEPA_X86
inline std::uint64_t xgetbv0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
#endif

inline CpuFeatures probe_cpu_features() {
  CpuFeatures f;
#ifdef JEPA_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = (c >> 12) & 1u, osxsave = (c >> 27) & 1u;
  const std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6u) == 0x6u;
  const bool os_avx512 = os_avx && (xcr0 & 0xE0u) == 0xE0u;
  const bool os_amx = (xcr0 & 0x60000u) == 0x60000u;
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned leaf7_max_sub = a;
    f.avx2 = os_avx && fma && ((b >> 5) & 1u);
    f.avx512 = os_avx512 && ((b >> 16) & 1u) && ((b >> 17) & 1u) && ((b >> 30) & 1u) && ((b >> 31) & 1u);
    f.amx_bf16 = os_amx && ((d >> 22) & 1u) && ((d >> 24) & 1u);
    if (leaf7_max_sub >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      f.avx512_bf16 = f.avx512 && ((a >> 5) & 1u);
    }
  }
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      unsigned r[4];
      __get_cpuid(0x80000002u + leaf, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + 16 * leaf, r, 16);
    }
    std::string s(brand);
    const auto first = s.find_first_not_of(' ');
    const auto last = s.find_last_not_of(' ');
    if (first != std::string::npos) f.brand = s.substr(first, last - first + 1);
  }
#endif
  return f;
}
}  // namespace detail

/// The features of this CPU, probed once.
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detail::probe_cpu_features();
  return f;
}

}  // namespace jepa::backend::cpu
