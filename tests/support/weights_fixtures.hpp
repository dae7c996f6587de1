// Test helpers for the released-weights fixtures (tools/make_weights_fixtures.py): the tiny model
// types of every family, reference tensors read from reference.safetensors, and the parity metrics
// (per-token cosine, norm-wise relative error).
#pragma once

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "jepa/eval/attentive_probe.hpp"
#include "jepa/io/safetensors.hpp"
#include "jepa/models/inference.hpp"
#include "jepa/models/predictor.hpp"
#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/multimodal.hpp"
#include "jepa/tokenizers/tubelet.hpp"
#include "support/fixtures.hpp"

namespace jepa::test::weights {

using namespace jepa::models;

// The tiny models of the fixtures (patch 4; the released models use 16 / 14).
using Vjepa2Enc = VitEncoder<2, tokenizers::Tubelet<2, 4>, RopeTiled, FinalNorm, float>;
using Vjepa21Tok = tokenizers::MultiModal<tokenizers::Tubelet<2, 4>, tokenizers::Tubelet<1, 4>, true>;
using Vjepa21Enc = VitEncoder<4, Vjepa21Tok, RopeInterleaved, HierarchicalTaps<0, 1, 2, 3>, float>;
using IjepaEnc = VitEncoder<2, tokenizers::Patch2d<4>, SinCos2d, FinalNorm, float>;
using Vjepa2Pred = Predictor<2, RopeTiled, 1, float>;
using Vjepa21Pred = Predictor<2, RopeInterleaved, 4, float>;
using Vjepa21DistPred = Predictor<2, RopeInterleaved, 1, float>;
using IjepaPred = Predictor<2, SinCos2d, 1, float>;

inline std::filesystem::path dir(const std::string& name) { return fixture_dir(name); }
inline std::filesystem::path model_file(const std::string& name) { return dir(name) / "model.safetensors"; }

inline VitConfig encoder_config(const nlohmann::json& c) {
  VitConfig v;
  v.embed_dim = c["embed_dim"];
  v.num_heads = c["heads"];
  v.mlp_hidden = c["mlp_hidden"];
  v.rope_interp_grid = c["rope_interp_grid"];
  v.residual_rescale = !c["ijepa"].get<bool>();
  return v;
}

inline PredictorConfig predictor_config(const nlohmann::json& c) {
  PredictorConfig p;
  p.encoder_dim = c["embed_dim"];
  p.pred_dim = c["pred_dim"];
  p.num_heads = c["pred_heads"];
  p.mlp_hidden = c["pred_mlp"];
  p.num_mask_tokens = c["mask_tokens"];
  p.out_dim = c["out_dim"];
  p.rope_interp_grid = c["rope_interp_grid"];
  p.ijepa_naming = c["ijepa"];
  p.zero_init_mask_tokens = !c["ijepa"].get<bool>();
  p.modality_embedding = c["mod_embed"];
  p.predict_context = c["context_proj"];
  return p;
}

/// reference.safetensors of a case.
struct Reference {
  io::SafetensorsFile file;
  explicit Reference(const std::string& name) : file(dir(name) / "reference.safetensors") {}
  std::vector<float> f(const std::string& key) const { return file.read<float>(key); }
  std::vector<std::int64_t> i(const std::string& key) const { return file.read<std::int64_t>(key); }
  Shape shape(const std::string& key) const { return file.info(key).shape; }
  bool has(const std::string& key) const { return file.contains(key); }
  template <int R>
  TensorView<const float, R> view(const std::vector<float>& data, const std::string& key) const {
    const Shape s = shape(key);
    BOOST_REQUIRE_EQUAL(static_cast<int>(s.rank()), R);
    std::array<index_t, R> a{};
    for (int k = 0; k < R; ++k) a[k] = s[k];
    return TensorView<const float, R>(data.data(), a);
  }
};

/// Parity of rows of width D: min over rows of cos(a_r, b_r) and ‖a − b‖/‖b‖ over everything.
inline void check_parity(const std::string& what, const float* a, const std::vector<float>& ref, std::size_t n, index_t D,
                         double min_cos = 0.99999, double max_rel = 1e-5) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_REQUIRE_EQUAL(n, ref.size());
    BOOST_REQUIRE(D > 0 && n % static_cast<std::size_t>(D) == 0);
    double worst_cos = 1.0, num = 0, den = 0;
    for (std::size_t r = 0; r < n / static_cast<std::size_t>(D); ++r) {
      double ab = 0, aa = 0, bb = 0;
      for (index_t d = 0; d < D; ++d) {
        const double x = a[r * D + d], y = ref[r * D + d];
        ab += x * y, aa += x * x, bb += y * y;
        num += (x - y) * (x - y), den += y * y;
      }
      worst_cos = std::min(worst_cos, ab / std::max(std::sqrt(aa * bb), 1e-300));
    }
    const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
    BOOST_TEST_MESSAGE(what << ": min per-token cosine " << worst_cos << ", relative error " << rel);
    BOOST_TEST(worst_cos >= min_cos, what << ": min per-token cosine " << worst_cos << " < " << min_cos);
    BOOST_TEST(rel <= max_rel, what << ": relative error " << rel << " > " << max_rel);
    BOOST_TEST(den > 0.0);
  }
}
inline void check_parity(const std::string& what, const std::vector<float>& a, const std::vector<float>& ref, index_t D) {
  check_parity(what, a.data(), ref, a.size(), D);
}

}  // namespace jepa::test::weights
