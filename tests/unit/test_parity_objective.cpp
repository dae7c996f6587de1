// Parity of one full JEPA loss evaluation with the PyTorch reference (tools/make_objective_fixtures.py):
//   objective_vjepa2_tiny   V-JEPA 2: tiled RoPE encoder + predictor, final norm, L1, 2 generators
//   objective_vjepa21_tiny  V-JEPA 2.1: multimodal tokenizer with modality embeddings, 4 taps, fusion
//                           MLP, predictor modality embedding, dense context loss with 1/√dist weights
//                           at step 22500 (λ = 0.25), per-level target normalisation
// Context and target encoders carry different weights (as after EMA updates). Fixed masks.
// Bounds (norm-wise relative): loss ≤ 1e-5 and parameter gradients ≤ 1e-4 in float; the double
// instantiation matches to ≤ 1e-10 (loss) and ≤ 1e-6 (gradients, stored as float32).
#include <boost/test/unit_test.hpp>

#include "jepa/jepa.hpp"
#include "jepa/models/jepa.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

using namespace jepa;
using namespace jepa::models;

namespace {

/// Replays the fixture's masks as a masking policy (it ignores seed and step).
struct FixtureMasks {
  std::vector<masking::MaskBatch> batches;
  int num_generators() const { return static_cast<int>(batches.size()); }
  std::vector<masking::MaskBatch> sample(const nn::TokenGrid&, std::uint64_t, std::uint64_t, index_t) const { return batches; }
};

template <class Model>
void run(const std::string& name, const VitConfig& ec, const PredictorConfig& pc,
         typename Model::T /*tag*/, double loss_tol, double grad_tol, auto loss_policy) {
  using T = typename Model::T;
  const auto dir = test::fixture_dir(name);
  const auto cj = test::load_json(dir / "config.json");
  FixtureMasks masks;
  for (int j = 0; j < static_cast<int>(cj["num_generators"]); ++j) {
    const auto c = test::load_array(dir / ("ctx_" + std::to_string(j) + ".npy"));
    const auto t = test::load_array(dir / ("tgt_" + std::to_string(j) + ".npy"));
    masking::MaskBatch mb;
    mb.batch = static_cast<index_t>(c.shape[0]);
    mb.context_len = static_cast<index_t>(c.shape[1]);
    mb.target_len = static_cast<index_t>(t.shape[1]);
    mb.context = test::as<std::int64_t>(c);
    mb.target = test::as<std::int64_t>(t);
    masks.batches.push_back(mb);
  }
  Model model(ec, pc, masks, loss_policy);
  test::load_params(model.encoder().layout(), model.encoder_params().data(), dir / "encoder");
  test::load_params(model.encoder().layout(), model.target_params().data(), dir / "target_encoder");
  test::load_params(model.predictor().layout(), model.predictor_params().data(), dir / "predictor");
  const index_t B = cj["batch"];
  const auto clip = test::as<T>(test::load_array(dir / "input.npy"));
  const TensorView<const T, 5> cv(clip.data(), {B, 3, cj["frames"], cj["height"], cj["width"]});

  const auto rep = model.forward_loss(cv, cj["step"]);
  const auto ref = test::load_array(dir / "loss.npy");
  BOOST_TEST_MESSAGE(name << " (" << (sizeof(T) == 4 ? "float" : "double") << "): loss " << rep.loss << " vs "
                          << ref.data[0] << ", prediction " << rep.prediction << " vs " << ref.data[1] << ", context "
                          << rep.context << " vs " << ref.data[2]);
  BOOST_TEST(std::abs(rep.loss - ref.data[0]) <= loss_tol * std::abs(ref.data[0]));
  BOOST_TEST(std::abs(rep.prediction - ref.data[1]) <= loss_tol * std::abs(ref.data[1]));
  BOOST_TEST(std::abs(rep.context - ref.data[2]) <= loss_tol * std::abs(ref.data[2]) + 1e-12);
  model.zero_grad();
  model.backward();
  double worst = 0;
  std::string worst_name;
  for (auto [layout, grads, sub] : {std::tuple{&model.encoder().layout(), model.encoder_grads().data(), "grad_encoder"},
                                    std::tuple{&model.predictor().layout(), model.predictor_grads().data(), "grad_predictor"}}) {
    for (const auto& p : layout->params()) {
      const auto g = test::load_array(dir / sub / (p.name + ".npy"));
      BOOST_REQUIRE_EQUAL(g.size(), p.numel());
      double norm = 0;
      for (double v : g.data) norm += v * v;
      if (norm == 0) {  // parameters the reference leaves untouched must stay exactly zero
        for (std::size_t i = 0; i < p.numel(); ++i) BOOST_REQUIRE_MESSAGE(grads[p.offset + i] == T(0), p.name << " should have no gradient");
        continue;
      }
      const double e = test::rel_error(grads + p.offset, g.data.data(), g.size());
      if (e > worst) worst = e, worst_name = std::string(sub) + "/" + p.name;
      BOOST_TEST(e <= grad_tol, sub << "/" << p.name << " rel error " << e);
    }
  }
  BOOST_TEST_MESSAGE("worst gradient rel error " << worst << " (" << worst_name << ")");
}

template <class T>
void vjepa2_case(double lt, double gt) {
  using Enc = VitEncoder<2, tokenizers::Tubelet<2, 8>, RopeTiled, FinalNorm, T>;
  using Pred = Predictor<2, RopeTiled, 1, T>;
  using Model = Jepa<Enc, Pred, FixtureMasks, losses::MaskedLoss<losses::L1>>;
  VitConfig ec;
  ec.embed_dim = 64, ec.num_heads = 2, ec.mlp_hidden = 256;
  PredictorConfig pc;
  pc.encoder_dim = 64, pc.pred_dim = 32, pc.num_heads = 2, pc.mlp_hidden = 128, pc.num_mask_tokens = 10;
  run<Model>("objective_vjepa2_tiny", ec, pc, T{}, lt, gt, losses::MaskedLoss<losses::L1>{});
}
template <class T>
void vjepa21_case(double lt, double gt) {
  using Tok = tokenizers::MultiModal<tokenizers::Tubelet<2, 8>, tokenizers::Tubelet<1, 8>, true>;
  using Enc = VitEncoder<4, Tok, RopeInterleaved, HierarchicalTaps<0, 1, 2, 3>, T>;
  using Pred = Predictor<2, RopeInterleaved, 4, T>;
  using Loss = losses::ContextLoss<losses::L1>;
  using Model = Jepa<Enc, Pred, FixtureMasks, Loss>;
  VitConfig ec;
  ec.embed_dim = 48, ec.num_heads = 3, ec.mlp_hidden = 192, ec.rope_interp_grid = 32;
  PredictorConfig pc;
  pc.encoder_dim = 48, pc.pred_dim = 32, pc.num_heads = 2, pc.mlp_hidden = 128, pc.num_mask_tokens = 8;
  pc.rope_interp_grid = 32, pc.modality_embedding = true, pc.predict_context = true;
  Loss loss;  // λ 0.5 warmed up over [15000, 30000), distance-weighted
  run<Model>("objective_vjepa21_tiny", ec, pc, T{}, lt, gt, loss);
}

}  // namespace

BOOST_AUTO_TEST_CASE(vjepa2_tiny_float) { vjepa2_case<float>(1e-5, 1e-4); }
BOOST_AUTO_TEST_CASE(vjepa2_tiny_double) { vjepa2_case<double>(1e-10, 1e-6); }
BOOST_AUTO_TEST_CASE(vjepa21_tiny_float) { vjepa21_case<float>(1e-5, 1e-4); }
BOOST_AUTO_TEST_CASE(vjepa21_tiny_double) { vjepa21_case<double>(1e-10, 1e-6); }
