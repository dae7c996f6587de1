// custom_policies — plugging a user's own masking policy and loss policy into a library preset.
//
//   presets::VJepa2<Shape, Scalar, Backend, FuturePredictionMask, LogCoshLoss>
// is the V-JEPA 2 architecture with the user's policies; the library checks both against their
// concepts at compile time (with our own messages if something is missing) and runs forward_loss /
// backward exactly as for the recipe's policies. This program evaluates a few steps on synthetic
// clips with plain SGD on the predictor and encoder, printing the loss.
#include <cstdio>

#include <jepa/data/synthetic_video.hpp>
#include <jepa/models/jepa_presets.hpp>

#include "my_loss.hpp"
#include "my_masking.hpp"

namespace P = jepa::models::presets;

int main() {
  try {
    using Model = P::VJepa2<P::vit_micro, float, jepa::backend::Cpu, FuturePredictionMask, LogCoshLoss>;
    const auto cfg = P::vjepa2_model_config(P::vit_micro);
    Model model(cfg.encoder, cfg.predictor, FuturePredictionMask{}, LogCoshLoss{});
    model.init(0);
    const jepa::index_t B = 4, F = 8, S = 64;
    jepa::data::SyntheticVideo source({F, S, S, 2, 3, 0});
    std::vector<float> clip(static_cast<std::size_t>(B * 3 * F * S * S));
    std::printf("V-JEPA 2 (vit_micro) with FuturePredictionMask + LogCoshLoss, %zu + %zu parameters\n",
                model.encoder().param_count(), model.predictor().param_count());
    for (std::uint64_t step = 0; step < 8; ++step) {
      source.batch(step * B, B, clip.data());
      const auto rep = model.forward_loss(jepa::TensorView<const float, 5>(clip.data(), {B, 3, F, S, S}), step);
      model.zero_grad();
      model.backward();
      for (auto [p, g] : {std::pair{&model.encoder_params(), &model.encoder_grads()},
                          std::pair{&model.predictor_params(), &model.predictor_grads()}})
        for (std::size_t i = 0; i < p->numel(); ++i) p->data()[i] -= 0.05f * g->data()[i];  // plain SGD
      std::printf("step %llu  loss %.5f  (context %ld tokens, target %ld tokens)\n",
                  static_cast<unsigned long long>(step), rep.loss, static_cast<long>(rep.context_len[0]),
                  static_cast<long>(rep.target_len[0]));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
