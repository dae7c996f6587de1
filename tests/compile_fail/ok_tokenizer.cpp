// The valid twin of ko_tokenizer.cpp: a complete user tokenizer compiles.
#include "jepa/models/vit_encoder.hpp"

struct MyTokenizer {
  static constexpr int tubelet = 2;
  static constexpr int patch = 16;
  static constexpr std::string_view name = "MyTokenizer";
  static jepa::Shape weight_shape(jepa::index_t d, jepa::index_t c) { return {d, c, 2, 16, 16}; }
};
static_assert(jepa::Tokenizer<MyTokenizer>);
int ok_tokenizer() { jepa::models::VitEncoder<2, MyTokenizer> e(jepa::models::VitConfig{}); return static_cast<int>(e.param_count() > 0); }
