// expect: jepa: Tokenizer must define `static constexpr int patch`
// A user tokenizer that forgot its patch size.
#include "jepa/models/vit_encoder.hpp"

struct MyTokenizer {
  static constexpr int tubelet = 2;
  static jepa::Shape weight_shape(jepa::index_t d, jepa::index_t c) { return {d, c, 2, 16, 16}; }
};
using Bad = jepa::models::VitEncoder<2, MyTokenizer>;
int main() { Bad e(jepa::models::VitConfig{}); (void)e; }
