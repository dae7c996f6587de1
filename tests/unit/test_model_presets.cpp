// The composed presets: every family (ijepa, vjepa, vjepa2, vjepa2_1) runs a loss evaluation and a
// backward pass at vit_micro with the recipe's own masking policy; the published predictor shapes
// give the recipe's parameter counts (§10.5–6); images enter V-JEPA 2 as repeated frames.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "jepa/data/synthetic_video.hpp"
#include "jepa/models/jepa_presets.hpp"

using namespace jepa;
using namespace jepa::models;
namespace P = jepa::models::presets;

namespace {
template <class Model>
void one_step(Model& model, index_t frames, index_t size, std::uint64_t step, const char* what) {
  model.init(1);
  const index_t B = 2;
  std::vector<float> clip(static_cast<std::size_t>(B * 3 * frames * size * size));
  if (frames > 1) {
    data::SyntheticVideo src({frames, size, size, 2, 4, 0});
    src.batch(0, B, clip.data());
  } else {
    data::SyntheticVideo src({1, size, size, 2, 4, 0});
    src.batch(0, B, clip.data());
  }
  const TensorView<const float, 5> cv(clip.data(), {B, 3, frames, size, size});
  const auto rep = model.forward_loss(cv, step);
  BOOST_TEST_MESSAGE(what << ": loss " << rep.loss << ", generators " << rep.context_len.size() << ", context "
                          << rep.context_len[0] << ", target " << rep.target_len[0]);
  BOOST_TEST(std::isfinite(rep.loss));
  BOOST_TEST(rep.loss > 0.0);
  model.zero_grad();
  model.backward();
  double ge = 0, gp = 0;
  for (std::size_t i = 0; i < model.encoder_grads().numel(); ++i) ge += std::abs(model.encoder_grads().data()[i]);
  for (std::size_t i = 0; i < model.predictor_grads().numel(); ++i) gp += std::abs(model.predictor_grads().data()[i]);
  BOOST_TEST(std::isfinite(ge));
  BOOST_TEST(ge > 0.0);
  BOOST_TEST(gp > 0.0);
  // Same step → same masks → same loss (determinism).
  BOOST_TEST(model.forward_loss(cv, step).loss == rep.loss);
}
}  // namespace

BOOST_AUTO_TEST_CASE(every_family_trains_at_micro_size) {
  auto ij = P::ijepa<P::vit_micro>();
  one_step(ij, 1, 224, 0, "ijepa (224² image, 16×16 grid)");
  auto vj = P::vjepa<P::vit_micro>();
  one_step(vj, 4, 224, 0, "vjepa (4×224²)");
  BOOST_TEST(vj.mask_token_per_generator);
  auto v2 = P::vjepa2<P::vit_micro>();
  one_step(v2, 4, 256, 0, "vjepa2 (4×256²)");
  auto v21 = P::vjepa2_1<P::vit_micro>();
  one_step(v21, 4, 256, 25000, "vjepa2_1 video (4×256², λ warming up)");
  auto v21i = P::vjepa2_1<P::vit_micro>(masking::Multiblock3d::vjepa21_image());
  one_step(v21i, 1, 256, 40000, "vjepa2_1 image (1-frame tokenizer, 10-block image mask)");
}

BOOST_AUTO_TEST_CASE(published_predictor_sizes) {
  // §10.5–6 through the presets (layouts only: nothing is allocated).
  auto count = [](auto pred_type_tag, const PredictorConfig& c) {
    using Pred = typename decltype(pred_type_tag)::type;
    return Pred(c).param_count();
  };
  struct V2L { using type = Predictor<P::vjepa2_predictor(P::vit_large).depth, RopeTiled, 1>; };
  struct V2g { using type = Predictor<P::vjepa2_predictor(P::vit_giant_xformers).depth, RopeTiled, 1>; };
  struct V21g { using type = Predictor<P::vjepa21_predictor(P::vit_giant_xformers).depth, RopeInterleaved, 4>; };
  struct V21G { using type = Predictor<P::vjepa21_predictor(P::vit_gigantic_xformers).depth, RopeInterleaved, 4>; };
  struct V1L { using type = Predictor<P::vjepa_predictor(P::vit_large).depth, SinCos3d<true>, 1>; };
  BOOST_TEST(count(V2L{}, P::vjepa2_model_config(P::vit_large).predictor) == 22'086'016u);
  BOOST_TEST(count(V2g{}, P::vjepa2_model_config(P::vit_giant_xformers).predictor) == 22'381'312u);
  BOOST_TEST(count(V21g{}, P::vjepa21_model_config(P::vit_giant_xformers).predictor) == 55'400'704u);
  BOOST_TEST(count(V21G{}, P::vjepa21_model_config(P::vit_gigantic_xformers).predictor) == 59'433'472u);
  BOOST_TEST(count(V1L{}, P::vjepa_model_config(P::vit_large).predictor) == 22'082'944u);
  // The distilled 2.1 ViT-B predictor: one level, 1664-wide teacher outputs.
  auto c = P::vjepa21_model_config(P::vit_base).predictor;
  c.out_dim = 1664;
  BOOST_TEST((Predictor<12, RopeInterleaved, 1>(c).param_count() == 22'874'752u));
}

BOOST_AUTO_TEST_CASE(images_as_repeated_frames) {
  // V-JEPA 2 convention: an image is repeated along time and goes through the video tokenizer.
  const index_t B = 2, H = 32, W = 32, F = 4;
  std::vector<float> img(B * 3 * H * W);
  for (std::size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i % 97) * 0.01f;
  std::vector<float> clip(B * 3 * F * H * W);
  tokenizers::repeat_frames(img.data(), B, 3, H, W, F, clip.data());
  for (index_t b = 0; b < B; ++b)
    for (index_t c = 0; c < 3; ++c)
      for (index_t f = 0; f < F; ++f)
        for (index_t p = 0; p < H * W; ++p)
          BOOST_REQUIRE(clip[((b * 3 + c) * F + f) * H * W + p] == img[(b * 3 + c) * H * W + p]);
}

BOOST_AUTO_TEST_CASE(objective_bad_input) {
  auto model = P::vjepa2<P::vit_micro>();
  model.init(0);
  std::vector<float> clip(2 * 3 * 4 * 64 * 64);
  const TensorView<const float, 5> cv(clip.data(), {2, 3, 4, 64, 64});
  const auto grid = model.encoder().grid({4, 64, 64});
  // A mask batch drawn for another batch size.
  auto masks = model.masking().sample(grid, 0, 0, 3);
  BOOST_CHECK_EXCEPTION(model.forward_loss(cv, 0, masks), ShapeError, [](const ShapeError& e) {
    return std::string(e.what()).find("drawn for a batch of 3 but the clip batch is 2") != std::string::npos;
  });
  // A mask with an index outside the grid, and context/target overlap.
  masks = model.masking().sample(grid, 0, 0, 2);
  masks[0].target[0] = 10000;
  BOOST_CHECK_THROW(model.forward_loss(cv, 0, masks), IndexError);
  masks = model.masking().sample(grid, 0, 0, 2);
  masks[0].target[0] = masks[0].context[0];
  BOOST_CHECK_THROW(model.forward_loss(cv, 0, masks), IndexError);
  // Samples that leave no context or no target.
  BOOST_CHECK_EXCEPTION(masking::truncate_batch({{{}, {1, 2}}}), ShapeError, [](const ShapeError& e) {
    return std::string(e.what()).find("leaves no context token") != std::string::npos;
  });
  BOOST_CHECK_EXCEPTION(masking::truncate_batch({{{1, 2}, {}}}), ShapeError, [](const ShapeError& e) {
    return std::string(e.what()).find("has no target token") != std::string::npos;
  });
  // backward() before forward_loss().
  BOOST_CHECK_THROW(model.backward(), ConfigError);
  // Predictor and encoder widths that do not fit together.
  auto c = P::vjepa2_model_config(P::vit_micro);
  c.predictor.encoder_dim = 32;
  BOOST_CHECK_EXCEPTION((P::VJepa2<P::vit_micro>(c.encoder, c.predictor, masking::Multiblock3d::vjepa())), ConfigError,
                        [](const ConfigError& e) { return std::string(e.what()).find("PredictorConfig.encoder_dim = 32") != std::string::npos; });
  // A context-loss model whose predictor does not predict the context.
  auto c21 = P::vjepa21_model_config(P::vit_micro);
  c21.predictor.predict_context = false;
  BOOST_CHECK_THROW((P::VJepa21<P::vit_micro>(c21.encoder, c21.predictor, masking::Multiblock3d::vjepa())), ConfigError);
}
