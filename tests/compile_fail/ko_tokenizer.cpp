// case missing_tubelet: jepa: Tokenizer must define `static constexpr int tubelet`
// case missing_patch: jepa: Tokenizer must define `static constexpr int patch`
// case missing_weight_shape: jepa: Tokenizer must define `static jepa::Shape weight_shape
// case zero_patch: jepa: Tokenizer::tubelet and Tokenizer::patch must be >= 1
// A user tokenizer missing one requirement at a time, used in an encoder.
#include "jepa/models/vit_encoder.hpp"

struct MyTokenizer {
#ifndef JEPA_KO_missing_tubelet
  static constexpr int tubelet = 2;
#endif
#if defined(JEPA_KO_zero_patch)
  static constexpr int patch = 0;
#elif !defined(JEPA_KO_missing_patch)
  static constexpr int patch = 16;
#endif
  static constexpr std::string_view name = "MyTokenizer";
#ifndef JEPA_KO_missing_weight_shape
  static jepa::Shape weight_shape(jepa::index_t d, jepa::index_t c) { return {d, c, 2, 16, 16}; }
#endif
};
int main() { jepa::models::VitEncoder<2, MyTokenizer> e(jepa::models::VitConfig{}); (void)e; }
